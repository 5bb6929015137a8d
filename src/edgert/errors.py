"""The edgert exception family. Every error a user can cause is one of these."""


class EdgertError(Exception):
    """Base class of every error edgert raises on purpose."""


class ModelError(EdgertError, ValueError):
    """The model file or graph is malformed, inconsistent or hostile."""


class UnsupportedOpError(ModelError):
    """The model uses ops edgert cannot run. `.nodes` lists (name, op_type, domain, reason)."""

    def __init__(self, nodes):
        self.nodes = list(nodes)
        lines = [f"  - node '{n}': {d + '::' if d else ''}{t}" + (f" ({r})" if r else "")
                 for n, t, d, r in self.nodes]
        super().__init__(f"{len(self.nodes)} node(s) use ops edgert cannot run:\n" + "\n".join(lines))


class InputError(EdgertError, ValueError):
    """A run was given a wrong input name, a missing input, or a wrong dtype or shape."""


class ConfigError(EdgertError, ValueError):
    """An edgert setting is invalid: an EDGERT_* environment variable (EDGERT_SPIN_US)."""


class MissingDependencyError(EdgertError, ImportError):
    """An optional extra is needed for this call (e.g. `cloud` for the cloud fallback)."""
