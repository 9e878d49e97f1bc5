"""Check which OpenMP runtime the installed cyconv's compiled modules load.

    python check_openmp_linkage.py vendored   # a repaired wheel: libgomp from the wheel's cyconv.libs/
    python check_openmp_linkage.py none       # a CYCONV_NO_OPENMP=1 build: no OpenMP runtime at all

Run it from outside the source tree, so that `import cyconv` finds the installed package (checked).
Two views: ldd (what the dynamic linker resolves for each compiled module) and /proc/self/maps after
importing every one (what this process really mapped). A repaired wheel's modules need libgomp under
auditwheel's hashed name (libgomp-HASH.so...), which nothing outside the wheel provides, so neither
the system's libgomp nor LD_LIBRARY_PATH can stand in for the copy the wheel ships.
"""
import glob
import importlib
import importlib.machinery
import os
import subprocess
import sys
import sysconfig

import cyconv
from cyconv import _cpu

OPENMP_RUNTIMES = ("libgomp", "libomp", "libiomp")
SYSTEM_SONAMES = ("libgomp.so.1", "libomp.so", "libiomp5.so")


def compiled_modules(package):
    """Paths of the compiled modules in the installed package."""
    return sorted({path for suffix in importlib.machinery.EXTENSION_SUFFIXES
                   for path in glob.glob(os.path.join(package, "*" + suffix))})


def linked_openmp(module):
    """{needed name: resolved path} of the OpenMP runtimes ldd finds for one compiled module."""
    listing = subprocess.run(["ldd", module], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in listing.splitlines():
        name, _, target = line.strip().partition(" => ")
        if name.startswith(OPENMP_RUNTIMES):
            found[name] = target.split(" (")[0]
    return found


def mapped_openmp():
    """Files of OpenMP runtimes mapped into this process."""
    with open("/proc/self/maps") as maps:
        return {line.split()[-1] for line in maps if any(runtime in line for runtime in OPENMP_RUNTIMES)}


def problems(mode, package, libs):
    """What contradicts MODE, as sentences (empty when the install is as it should be)."""
    modules = compiled_modules(package)
    if not modules:
        return [f"no compiled module in {package}"]
    for module in modules:
        name = os.path.basename(module).split(".")[0]
        if _cpu.runs_here(name):  # a CPU variant this CPU lacks would die importing (its ldd still counts)
            importlib.import_module(f"cyconv.{name}")
    found, linked = [], {os.path.basename(module): linked_openmp(module) for module in modules}
    mapped = mapped_openmp()
    if mode == "none":
        found += [f"{module} needs {name}" for module, needs in linked.items() for name in needs]
        found += [f"this process mapped {path}" for path in mapped]
        return found
    if not any(linked.values()):
        found.append("no compiled module needs an OpenMP runtime: the wheel was built without OpenMP")
    for module, needs in linked.items():
        for name, path in needs.items():
            if name in SYSTEM_SONAMES:
                found.append(f"{module} needs the system's name {name}, not a vendored copy")
            if not os.path.realpath(path).startswith(libs + os.sep):
                found.append(f"{module}: {name} resolves to {path}, outside {libs}")
    found += [f"this process mapped {path}, outside {libs}" for path in mapped
              if not os.path.realpath(path).startswith(libs + os.sep)]
    if not mapped:
        found.append("importing the compiled modules mapped no OpenMP runtime")
    return found


def main(mode):
    site = os.path.realpath(sysconfig.get_path("platlib"))
    package = os.path.dirname(os.path.realpath(cyconv.__file__))
    if package != os.path.join(site, "cyconv"):
        print(f"cyconv was imported from {package}, not from this environment's {site}")
        return 1
    libs = os.path.join(site, "cyconv.libs")
    found = problems(mode, package, libs)
    for problem in found:
        print(problem)
    if found:
        return 1
    print(f"cyconv {cyconv.__version__} from {package}")
    if mode == "none":
        print("OpenMP: no compiled module needs a runtime, none was mapped")
    else:
        print(f"OpenMP: every runtime the compiled modules need and map is in {libs}: "
              + ", ".join(sorted(os.path.basename(path) for path in mapped_openmp())))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("vendored", "none"):
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
