"""Check that an sdist holds the source tree git tracks (less CI), and nothing the build generates.

    python .ci/check_sdist.py dist/cyconv-VERSION.tar.gz      (from the top of a git checkout)

The expected list is not written by hand: it is `git ls-files`, so whatever setup.py compiles or
globs (every cyconv/_*.pyx and the .pxd / .pxi / .h they cimport or include), the .pyi stubs,
py.typed, the tests and what they read all count the day they are committed. Missing files mean
MANIFEST.in does not reach them; extra files are generated ones (cythonized .c, compiled modules)
or strays. The sdist's own metadata (PKG-INFO, setup.cfg, *.egg-info/) is allowed.
"""
import subprocess
import sys
import tarfile

NOT_SHIPPED = (".ci/", ".gitignore")  # CI and git's own files: no use to a build from the sdist
SDIST_METADATA = ("PKG-INFO", "setup.cfg", ".egg-info/")


def tracked_files():
    """Files git tracks in this checkout, less those the sdist leaves out."""
    names = subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout.split()
    return {name for name in names if not name.startswith(NOT_SHIPPED)}


def sdist_files(path):
    """Files in the sdist, relative to its top folder (NAME-VERSION/), less its own metadata."""
    with tarfile.open(path) as sdist:
        names = [member.name.split("/", 1)[1] for member in sdist.getmembers() if member.isfile()]
    return {name for name in names if not (name.startswith(SDIST_METADATA) or ".egg-info/" in name)}


def main(path):
    expected, shipped = tracked_files(), sdist_files(path)
    missing, extra = sorted(expected - shipped), sorted(shipped - expected)
    for name in missing:
        print(f"missing from the sdist (add it to MANIFEST.in): {name}")
    for name in extra:
        print(f"in the sdist but not tracked by git (generated? exclude it in MANIFEST.in): {name}")
    if missing or extra:
        return 1
    print(f"sdist holds the {len(expected)} tracked files (less {', '.join(NOT_SHIPPED)}) and nothing else")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
