"""Build description of the compiled extension; project metadata lives in pyproject.toml.

Environment switches:
  CYCONV_CYTHON_DEBUG=1   compile with bounds and wraparound checks on, so an out-of-bounds index
                          in a kernel raises IndexError instead of corrupting memory.
  CYCONV_NO_OPENMP=1      build without OpenMP even where the compiler supports it.
"""
import glob
import os
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("CYCONV_CYTHON_DEBUG") == "1"

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
}

OPENMP_PROBE = """
#include <omp.h>
int main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }
"""


def compiler_has_openmp(compiler):
    """True when this compiler can compile and link an OpenMP program with -fopenmp."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as f:
            f.write(OPENMP_PROBE)
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objects, os.path.join(tmp, "probe"), extra_postargs=["-fopenmp"])
        except Exception:
            return False
    return True


class BuildExtWithOptionalOpenMP(build_ext):
    """Adds -fopenmp where it works; otherwise prange compiles to a serial loop."""

    def build_extensions(self):
        unix = self.compiler.compiler_type == "unix"
        use_openmp = (
            unix and os.environ.get("CYCONV_NO_OPENMP") != "1" and compiler_has_openmp(self.compiler)
        )
        for ext in self.extensions:
            ext.extra_compile_args = (["-O3"] if unix else []) + (["-fopenmp"] if use_openmp else [])
            ext.extra_link_args = ["-fopenmp"] if use_openmp else []
        super().build_extensions()


# One extension per compiled module: every cyconv/_NAME.pyx builds cyconv._NAME.
extensions = [
    Extension(
        f"cyconv.{os.path.splitext(os.path.basename(source))[0]}",
        [source],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for source in sorted(glob.glob("cyconv/_*.pyx"))
]

setup(
    # force: the generated C depends on DEBUG, so never reuse one made by the other mode.
    ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES, force=True),
    cmdclass={"build_ext": BuildExtWithOptionalOpenMP},
)
