"""Checks that an x86 build keeps its ISA code in the ISA files, so that the module imports and
runs on an x86-64 CPU without AVX2 (the files compiled with -mavx2, -mavx512* or -mamx-* are
only entered after isa.cc has seen the CPU and OS support them):

1. The generic objects (every object but the avx2/avx512vnni/amx ones) hold no instruction
   beyond the x86-64 baseline (no VEX or EVEX encoding, mask register, AMX tile or BMI one)
   outside the functions their source declares with a target attribute, which it calls only
   after a CPU check of its own (crc32c.cc's carry-less multiply folds).
2. Every function of the linked module that uses such instructions is one an ISA object
   defines (or one of those target-attribute functions).
3. No ISA object runs code at load: no static initializer in them (it would run on import,
   whatever the CPU).

That the ISA files share no inline function or template instance with the others (weak symbols,
of which the linker keeps one copy, perhaps the one compiled for AVX2) is checked by
tests/test_kernels_native.py.

The shipped module is built with link-time optimization, whose objects hold no machine code, so
this check reads a build without it (same flags otherwise). LTO adds no way for ISA code to
leak: GCC does not inline a function into one compiled for fewer ISA extensions, and the inline
functions it could merge across files are the weak symbols that test checks.

    python csrc/tests/isa_isolation.py <objects dir> <unstripped _core module> <source root>

qemu cannot do this check by running the module: its x86 emulation executes AVX2 even when told
to emulate a CPU without it. csrc/tests/isa_isolation.sh builds the module and runs this.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

ISA_OBJECT = re.compile(r"/(avx2|avx512vnni|amx)\.cc\.o$")
# Instructions beyond x86-64's baseline, as objdump prints them (AT&T): every VEX/EVEX one
# starts with v; mask registers; AMX; BMI1/2 and lzcnt (which older CPUs run as bsr, with
# another result). Not tzcnt: GCC writes __builtin_ctz as rep bsf, which objdump shows as tzcnt
# and older CPUs run as bsf, with the same result for the non-zero inputs ctz takes.
BEYOND = re.compile(
    r"\t(v(?!err|erw)[a-z0-9]+|k(mov|and|or|xor|xnor|not|test|shift|unpck|add)[a-z0-9]*"
    r"|ldtilecfg|sttilecfg|tileload[a-z0-9]*|tilestored|tilezero|tilerelease|tdp[a-z0-9]+"
    r"|shlx|sarx|shrx|rorx|pdep|pext|mulx|bzhi|andn|bextr|blsi|blsmsk|blsr|lzcnt)\b")
# A generic file's functions declared with a target attribute (crc32c.cc's carry-less multiply
# folds), which it calls only after its own CPU check.
TARGET_ATTR = re.compile(r"__attribute__\(\(target\([^)]*\)\)\)[^(;{]*?\b(\w+)\s*\(")


def beyond_baseline(path):
    """{function: [its instructions beyond the baseline]} in an object or module."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(path)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise SystemExit(f"objdump failed on {path}: {out.stderr.strip()}")
    found, func = {}, None
    for line in out.stdout.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            func = m.group(1)
        elif func and BEYOND.search(line):
            found.setdefault(func, []).append(line.strip())
    return found


def symbols(obj, kinds):
    """The symbols of an object whose nm type is in kinds."""
    out = subprocess.run(["nm", str(obj)], capture_output=True, text=True, check=True).stdout
    return {p[-1] for p in (line.split() for line in out.splitlines())
            if len(p) >= 2 and p[-2] in kinds}


WEAK = ("W", "V", "u", "w", "v")  # inline functions, templates: one copy kept at link


def demangle(name):
    return subprocess.run(["c++filt", name], capture_output=True, text=True).stdout.strip()


def targeted(obj, objects_dir, source_root):
    """The names of the functions obj's source declares with a target attribute."""
    rel = obj.relative_to(objects_dir).as_posix()[:-len(".o")]
    src = Path(source_root) / rel
    return set(TARGET_ATTR.findall(src.read_text())) if src.exists() else set()


def main(objects_dir, module, source_root):
    objs = sorted(Path(objects_dir).rglob("*.o"))
    isa_objs = [o for o in objs if ISA_OBJECT.search(o.as_posix())]
    generic = [o for o in objs if o not in isa_objs]
    if not isa_objs or not generic:
        raise SystemExit(f"no ISA or no generic objects under {objects_dir}: is it an x86 build?")
    if "no symbols" in subprocess.run(["nm", str(module)], capture_output=True, text=True).stderr:
        raise SystemExit(f"{module} is stripped: build it with -DCMAKE_STRIP=/bin/true")
    if all(not beyond_baseline(o) for o in isa_objs):
        raise SystemExit("the ISA objects hold no AVX code: LTO objects? build with "
                         "-DCMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF")
    problems = []
    allowed = set()  # generic files' target-attribute functions, as the module names them
    for o in generic:
        names = targeted(o, objects_dir, source_root)
        for func, insns in beyond_baseline(o).items():
            plain = demangle(func)
            if any(re.search(rf"(^|::){n}\(", plain) for n in names):
                allowed.add(func)
                continue
            problems.append(f"{o.name}: {plain} has {insns[0]}")
    # Every function of the module that uses AVX, AVX-512 or AMX comes from an ISA object.
    isa_defined = set().union(*(symbols(o, ("T", "t") + WEAK) for o in isa_objs))
    linked = beyond_baseline(module)
    for func in sorted(linked.keys() - isa_defined - allowed):
        problems.append(f"the module's {demangle(func)} has {linked[func][0]}")
    for o in isa_objs:
        heads = subprocess.run(["objdump", "-h", str(o)], capture_output=True, text=True,
                               check=True).stdout
        if re.search(r"\s\.(init_array|ctors)\b", heads):
            problems.append(f"{o.as_posix()}: has a static initializer (code run on import)")
    if problems:
        print("ISA code outside its files (the module would fault on a CPU without it):")
        for p in problems:
            print("  " + p)
        return 1
    print(f"isa_isolation: {len(generic)} generic objects without AVX code (but {len(allowed)} "
          f"target-attribute functions); {len(isa_objs)} ISA objects running nothing at load; the "
          f"module's {len(linked)} functions that use "
          f"AVX/AVX-512/AMX all theirs or those {len(allowed)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    sys.exit(main(sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]))
