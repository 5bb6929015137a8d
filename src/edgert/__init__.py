"""edgert: an on-device int8 inference runtime."""
# Lets a development build of _core in another directory on sys.path join this package.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)
