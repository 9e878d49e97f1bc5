"""The type stubs shipped beside each compiled module match it: same public functions, same
parameters in the same order. Read from the installed package, so a wheel without its .pyi files
or py.typed fails here."""
import ast
import importlib
import importlib.machinery
import inspect
import os

import pytest

import cyconv
from cyconv import _cpu

PACKAGE = os.path.dirname(cyconv.__file__)
SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cyconv")


def compiled_modules():
    """Names of the compiled modules installed in the package (cyconv._NAME) that this CPU can run
    (a CPU variant, cyconv._NAME_VARIANT, needs its instructions: cyconv._cpu)."""
    suffixes = sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True)  # ".cpython-...so" first
    names = set()
    for entry in os.listdir(PACKAGE):
        suffix = next((s for s in suffixes if entry.endswith(s)), None)
        if suffix and _cpu.runs_here(entry[: -len(suffix)]):
            names.add(entry[: -len(suffix)])
    return sorted(names)


def stub_functions(name):
    """{function: [parameter names]} of the installed NAME.pyi (CPU variants share their module's)."""
    with open(os.path.join(PACKAGE, f"{_cpu.split(name)[0]}.pyi")) as f:
        tree = ast.parse(f.read())
    return {node.name: [a.arg for a in node.args.args] for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_the_package_has_compiled_modules():
    assert "_im2col" in compiled_modules()


@pytest.mark.parametrize("name", compiled_modules())
def test_stubs_name_every_public_function(name):
    module = importlib.import_module(f"cyconv.{name}")
    public = {attr for attr in dir(module) if not attr.startswith("_") and callable(getattr(module, attr))}
    assert set(stub_functions(name)) == public


@pytest.mark.parametrize("name", compiled_modules())
def test_stub_parameters_match_the_compiled_signatures(name):
    module = importlib.import_module(f"cyconv.{name}")
    for function, parameters in stub_functions(name).items():
        assert parameters == list(inspect.signature(getattr(module, function)).parameters), function


def test_package_is_marked_typed():
    assert os.path.exists(os.path.join(PACKAGE, "py.typed"))


def test_package_ships_the_stubs_and_cython_declarations_of_its_source():
    """Every .pyi and .pxd beside the tests' own source tree is installed, so a wheel built with the
    wrong package data (no stubs for type checkers, no .pxd to cimport) fails here."""
    shipped = {name for name in os.listdir(SOURCE) if name.endswith((".pyi", ".pxd"))}
    assert shipped, f"no .pyi or .pxd in {SOURCE}"
    assert shipped <= set(os.listdir(PACKAGE))
