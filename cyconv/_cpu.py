"""Which compiled variant of a module this CPU runs (baseline x86-64, AVX2 + FMA, or AVX-512).

setup.py compiles the modules it lists in VARIANT_MODULES once per variant, from one source:
cyconv.NAME is the baseline (runs on any CPU the wheel targets) and cyconv.NAME_VARIANT is the same
code compiled with `-m<feature>` for each feature the variant needs (gcc or clang on x86-64 only;
elsewhere only the baseline is built). `load(NAME)` returns the best one this CPU supports and the
build has, as NumPy dispatches its SIMD loops.

Never import cyconv.NAME_VARIANT directly: its code may use the variant's instructions anywhere,
even while it is imported (runs_here tells whether this CPU can).

CYCONV_CPU_VARIANT=NAME caps the choice (`baseline`, `avx2`, `avx512`): to test the lower variants
on a new CPU, or to avoid AVX-512 where it is slow. It never selects a variant the CPU lacks.

This file is also read by setup.py (for VARIANTS), so it imports nothing from cyconv at the top.
"""
import importlib
import os

# Best first: variant name -> the CPU features it needs, also its compiler flags (-m<feature>).
VARIANTS = {
    "avx512": ("avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"),
    "avx2": ("avx2", "fma"),
    "baseline": (),
}

ENV_VARIABLE = "CYCONV_CPU_VARIANT"


def choose(supported, cap=None):
    """The best variant whose features are all in `supported` (a set of feature names) and which is
    no better than `cap` (a variant name; None or "" for no cap)."""
    names = list(VARIANTS)
    if cap:
        if cap not in VARIANTS:
            raise ValueError(f"{ENV_VARIABLE}={cap!r}: expected one of {', '.join(names)}")
        names = names[names.index(cap):]
    return next(name for name in names if set(VARIANTS[name]) <= set(supported))


def supported_features():
    """The features of VARIANTS that this CPU and operating system support (a set)."""
    from cyconv import _cpu_features

    return {name for name, present in _cpu_features.features().items() if present}


def variant():
    """The variant this process uses: the best the CPU supports, capped by CYCONV_CPU_VARIANT."""
    return choose(supported_features(), os.environ.get(ENV_VARIABLE))


def module_name(module, name):
    """Qualified name of `module` (e.g. "_direct") compiled for variant `name`."""
    return f"cyconv.{module}" if name == "baseline" else f"cyconv.{module}_{name}"


def split(module):
    """(module, variant) of a compiled module's name: "_direct_avx2" -> ("_direct", "avx2"),
    "_im2col" -> ("_im2col", "baseline")."""
    for name in VARIANTS:
        if name != "baseline" and module.endswith(f"_{name}"):
            return module[: -len(name) - 1], name
    return module, "baseline"


def runs_here(module):
    """Whether this CPU can run the compiled module of this name. A variant's code may use its
    instructions anywhere, even while it is imported: only import the variants this is true of."""
    return set(VARIANTS[split(module)[1]]) <= supported_features()


def load(module):
    """cyconv.`module` compiled for variant(), or for the next lower variant the build has (the
    baseline always exists)."""
    names = list(VARIANTS)
    for name in names[names.index(variant()):]:
        qualified = module_name(module, name)
        try:
            return importlib.import_module(qualified)
        except ModuleNotFoundError as error:
            if error.name != qualified:
                raise
    raise ModuleNotFoundError(f"no compiled variant of cyconv.{module}", name=f"cyconv.{module}")
