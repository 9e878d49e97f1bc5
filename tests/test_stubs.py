"""The type stubs shipped beside the compiled module match it: same public functions, same
parameters in the same order. Read from the installed package, so a wheel without its .pyi or
py.typed fails here."""
import ast
import inspect
import os

import cyconv
import cyconv._kernels as kernels


def stub_functions():
    """{name: [parameter names]} of the functions in the installed _kernels.pyi."""
    path = os.path.join(os.path.dirname(kernels.__file__), "_kernels.pyi")
    with open(path) as f:
        tree = ast.parse(f.read())
    return {node.name: [a.arg for a in node.args.args] for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_stubs_name_every_public_kernel():
    public = {name for name in dir(kernels) if not name.startswith("_") and callable(getattr(kernels, name))}
    assert set(stub_functions()) == public


def test_stub_parameters_match_the_compiled_signatures():
    for name, parameters in stub_functions().items():
        compiled = list(inspect.signature(getattr(kernels, name)).parameters)
        assert parameters == compiled, name


def test_package_is_marked_typed():
    assert os.path.exists(os.path.join(os.path.dirname(cyconv.__file__), "py.typed"))
