"""Finite-difference gradient checking: point it at your own layer or at a function with a
hand-written backward, and it tells you whether backward is right.

    report = check_layer(layer, x)                       # forward(x) / backward(grad_y)
    report = check_function(f, f_backward, {"x": x, "w": w})
    print(report)                                        # one row per gradient
    assert report.passed, report

Method. A random array r of the output's shape (standard normal, drawn from `seed`) turns the
output y into the scalar loss L = sum(y * r), summed in float64, whose gradient with respect to y
is r. The analytic gradients are what backward returns for grad_y = r. The numerical gradient of
every array is the central difference (L(a + eps) - L(a - eps)) / step at each element: the element
is perturbed in place, the step actually taken is read back (so rounding a + eps to float32 does
not bias the quotient), and the element is restored exactly afterwards. That is two forward calls
per element: use small arrays.

Passing. A gradient passes when every element satisfies
    |analytic - numerical| <= atol + rtol * |numerical|          (numpy.allclose)
The report also gives, per gradient, the largest absolute error and the largest relative error
|analytic - numerical| / max(|analytic|, |numerical|); the latter is large on entries that are
both nearly zero, which is what atol is for.

Precision. Analytic gradients are computed at the precision of the arrays you pass. Numerical
gradients evaluate forward on float64 copies of the inputs (all of check_function's, x for
check_layer), so a function that computes in the precision of its inputs, as cyconv's do, gets
float64 differences even when it is checked in float32. A layer's parameters are perturbed in place,
in their own dtype. When eps, rtol or atol is not given it comes from the least precise array checked:

    float64   eps 1e-5   rtol 1e-5   atol 1e-6
    float32   eps 1e-2   rtol 1e-3   atol 1e-3

The module also holds what `python -m cyconv gradcheck` checks cyconv itself with: conv2d_direct, a
direct-loop convolution written from the formula, and check_conv2d.
"""
import math
from dataclasses import dataclass, field

import numpy as np

from .functional import conv2d, conv2d_backward
from ._problems import conv_problem
from ._validation import real_array


@dataclass(frozen=True)
class Tolerances:
    """Finite-difference step and the allclose tolerances of one check."""

    eps: float
    rtol: float
    atol: float


DEFAULT_TOLERANCES = {
    "float64": Tolerances(eps=1e-5, rtol=1e-5, atol=1e-6),
    "float32": Tolerances(eps=1e-2, rtol=1e-3, atol=1e-3),
}


@dataclass(frozen=True)
class CheckResult:
    """One array compared with its reference.

    actual    what the code under test gave (a gradient from backward, or conv2d's output)
    expected  the reference (central differences, or conv2d_direct's output)
    """

    name: str
    shape: tuple
    max_abs_error: float
    max_rel_error: float
    passed: bool
    actual: np.ndarray = field(repr=False, compare=False)
    expected: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class GradcheckReport:
    """The results of one check, one per array, and the tolerances they were held to."""

    results: tuple
    tolerances: Tolerances

    @property
    def passed(self):
        """True when every array passed."""
        return all(result.passed for result in self.results)

    def __getitem__(self, name):
        """The CheckResult called `name`."""
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no result named {name!r}; the report has {[r.name for r in self.results]}")

    def __str__(self):
        names = [result.name for result in self.results]
        width = max([len("array")] + [len(name) for name in names])
        lines = [f"{'array':<{width}}  {'shape':<16}  {'max abs err':>11}  {'max rel err':>11}  result"]
        for r in self.results:
            lines.append(
                f"{r.name:<{width}}  {str(r.shape):<16}  {r.max_abs_error:>11.2e}  {r.max_rel_error:>11.2e}  "
                f"{'PASS' if r.passed else 'FAIL'}"
            )
        failed = sum(not r.passed for r in self.results)
        t = self.tolerances
        verdict = "PASS" if self.passed else f"FAIL ({failed} of {len(self.results)} arrays)"
        lines.append(f"{verdict}: rtol={t.rtol:g}, atol={t.atol:g}, eps={t.eps:g}")
        return "\n".join(lines)


def check_function(forward, backward, inputs, *, eps=None, rtol=None, atol=None, seed=None):
    """Check the hand-written backward of a function of named arrays.

    forward(**inputs) -> y, an array
    backward(grad_y, **inputs) -> the gradients dL/d(input) for dL/dy = grad_y: a sequence in the
        order of `inputs`, or a mapping from each input's name to its gradient
    inputs   dict name -> float array; not modified (the numerical pass works on float64 copies)

    Returns a GradcheckReport with one row per input. See the module docstring for the method and
    the default eps, rtol and atol.
    """
    if not isinstance(inputs, dict) or not inputs:
        raise ValueError(f"inputs must be a non-empty dict of name -> array, got {inputs!r:.80}")
    arrays = {name: _float_array(f"inputs[{name!r}]", value) for name, value in inputs.items()}
    tolerances = _tolerances(arrays.values(), eps, rtol, atol)
    projection = _projection(forward(**arrays), seed)
    analytic = _named_gradients(backward(projection, **arrays), arrays)

    wide = {name: array.astype(np.float64) for name, array in arrays.items()}

    def loss():
        return _loss(forward(**wide), projection)

    results = [
        _compare(name, analytic[name], _numerical_gradient(loss, name, wide[name], tolerances.eps), tolerances)
        for name in arrays
    ]
    return GradcheckReport(tuple(results), tolerances)


def check_layer(layer, x, *, params=None, eps=None, rtol=None, atol=None, seed=None):
    """Check a layer's backward: the gradient of its input and of each of its parameters.

    The layer has `forward(x)` (or is callable) and `backward(grad_y)`. Its parameters are found by
    the first of these protocols that applies:

    1. `params`, given here: a sequence of (name, array, get_grad) with `array` the very array the
       layer computes with (it is perturbed in place) and `get_grad()` returning its gradient after
       backward. backward returns grad_x, or a tuple whose first item is grad_x.
    2. `layer.params`, a list of arrays (document 000's `Conv`): backward returns
       (grad_x, [gradient of each of params]). Rows are named after the attribute that holds the
       same array (`W`, `b`), else `params[i]`.
    3. Otherwise (document 001's `Convolution`): every instance attribute `NAME_grad` whose `NAME`
       is an array (kernel / kernel_grad, bias / bias_grad); backward returns grad_x.

    Side effects: the layer runs forward and backward on its own parameters, so gradient attributes
    and caches are overwritten; at the end its parameters hold their original values (bit for bit)
    and it has last run forward(x). Returns a GradcheckReport with rows `x` and one per parameter.
    """
    forward = getattr(layer, "forward", layer)
    if not callable(forward) or not callable(getattr(layer, "backward", None)):
        raise TypeError(f"layer must have forward(x) (or be callable) and backward(grad_y), got {layer!r:.80}")
    x = _float_array("x", x)
    parameters = _layer_parameters(layer, params)
    tolerances = _tolerances([x] + [array for _, array, _ in parameters], eps, rtol, atol)

    projection = _projection(forward(x), seed)
    result = layer.backward(projection)
    analytic = {"x": _checked_gradient("x", result[0] if isinstance(result, tuple) else result, x)}
    for name, array, gradient in parameters:
        analytic[name] = _checked_gradient(name, gradient(result), array)

    wide_x = x.astype(np.float64)

    def loss():
        return _loss(forward(wide_x), projection)

    numerical = {"x": _numerical_gradient(loss, "x", wide_x, tolerances.eps)}
    for name, array, _ in parameters:
        numerical[name] = _numerical_gradient(loss, name, array, tolerances.eps)
    forward(x)
    results = [_compare(name, analytic[name], numerical[name], tolerances) for name in analytic]
    return GradcheckReport(tuple(results), tolerances)


def conv2d_direct(x, kernel, bias=None, strides=1, dilations=0, padding="VALID", *, layout="NHWC",
                  pad_value=0.0):
    """conv2d by direct loops over output pixels and kernel taps, in float64: slow, for checking.

    Arguments and output shape as cyconv.conv2d; the result is always float64. Written from
        y[n, oh, ow, f] = bias[f] + sum_{i, j, c} xpad[n, oh*sh + i*(dh+1) - top, ow*sw + j*(dw+1) - left, c]
                                                  * kernel[f, i, j, c]
    where xpad reads pad_value outside the input, without im2col. Only argument validation and the
    paddings that 'SAME' resolves to come from cyconv (the validated Geometry).
    """
    problem = conv_problem(x, kernel, bias, strides, dilations, padding, layout, pad_value)
    g = problem.geometry
    x = problem.x.astype(np.float64)
    kernel = problem.kernel.astype(np.float64)
    if problem.layout == "NCHW":
        x, kernel = x.transpose(0, 2, 3, 1), kernel.transpose(0, 2, 3, 1)
    n, h, w, c = x.shape
    f, kh, kw, _ = kernel.shape
    row_step, col_step = g.dilation_h + 1, g.dilation_w + 1
    out_h = (h + g.pad_top + g.pad_bottom - (kh - 1) * row_step - 1) // g.stride_h + 1
    out_w = (w + g.pad_left + g.pad_right - (kw - 1) * col_step - 1) // g.stride_w + 1
    padding_pixel = np.full((n, c), problem.pad_value)
    y = np.zeros((n, out_h, out_w, f))
    for oh in range(out_h):
        for ow in range(out_w):
            for i in range(kh):
                row = oh * g.stride_h + i * row_step - g.pad_top
                for j in range(kw):
                    col = ow * g.stride_w + j * col_step - g.pad_left
                    inside = 0 <= row < h and 0 <= col < w
                    pixel = x[:, row, col, :] if inside else padding_pixel
                    y[:, oh, ow, :] += pixel @ kernel[:, i, j, :].T
    if problem.bias is not None:
        y += problem.bias
    return y if problem.layout == "NHWC" else np.ascontiguousarray(y.transpose(0, 3, 1, 2))


def check_conv2d(x, kernel, bias=None, strides=1, dilations=0, padding="VALID", *, layout="NHWC",
                 pad_value=0.0, eps=None, rtol=None, atol=None, seed=None):
    """Check cyconv itself on one problem: conv2d against conv2d_direct, conv2d_backward against
    central differences of conv2d (evaluated in float64).

    Arguments as for conv2d, plus the tolerances of check_function. Returns a GradcheckReport with
    the row `y` (the forward comparison) and one row per gradient: `x`, `kernel` and, with a bias,
    `bias`.
    """
    options = dict(strides=strides, dilations=dilations, padding=padding, layout=layout, pad_value=pad_value)
    inputs = {"x": x, "kernel": kernel} if bias is None else {"x": x, "kernel": kernel, "bias": bias}

    def forward(**arrays):
        return conv2d(**arrays, **options)

    def backward(grad_y, x, kernel, bias=None):
        return conv2d_backward(grad_y, x, kernel, **options)[:len(inputs)]

    gradients = check_function(forward, backward, inputs, eps=eps, rtol=rtol, atol=atol, seed=seed)
    y = _compare("y", conv2d(**inputs, **options), conv2d_direct(**inputs, **options), gradients.tolerances)
    return GradcheckReport((y,) + gradients.results, gradients.tolerances)


def _float_array(name, value):
    """cyconv's real-array check, plus: floating point, since finite differences perturb it."""
    array = real_array(name, value)
    if array.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point array, got dtype {array.dtype}")
    return array


def _tolerances(arrays, eps, rtol, atol):
    """The given eps / rtol / atol, the defaults of the least precise array for those not given."""
    least_precise = "float32" if any(a.dtype.itemsize <= 4 for a in arrays) else "float64"
    default = DEFAULT_TOLERANCES[least_precise]
    return Tolerances(
        eps=default.eps if eps is None else _tolerance("eps", eps, allow_zero=False),
        rtol=default.rtol if rtol is None else _tolerance("rtol", rtol, allow_zero=True),
        atol=default.atol if atol is None else _tolerance("atol", atol, allow_zero=True),
    )


def _tolerance(name, value, allow_zero):
    """value as a finite float, > 0 (or >= 0 with allow_zero)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return value


def _projection(y, seed):
    """The random r of L = sum(y * r), in y's dtype: what backward receives as grad_y."""
    y = _float_array("the output of forward", y)
    return np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype)


def _loss(y, projection):
    return float(np.vdot(np.asarray(y, dtype=np.float64), projection.astype(np.float64)))


def _numerical_gradient(loss, name, array, eps):
    """Central differences of loss() with respect to every element of array, perturbed in place."""
    gradient = np.zeros(array.shape)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + eps
        above, loss_above = float(array[index]), loss()
        array[index] = saved - eps
        below, loss_below = float(array[index]), loss()
        array[index] = saved
        if above == below:
            raise ValueError(
                f"eps={eps:g} does not change {name}{list(index)} = {saved} in {array.dtype}; use a larger eps"
            )
        gradient[index] = (loss_above - loss_below) / (above - below)
    return gradient


def _named_gradients(gradients, arrays):
    """{name: gradient} from backward's sequence (in the order of arrays) or mapping."""
    if isinstance(gradients, dict):
        missing = [name for name in arrays if name not in gradients]
        if missing:
            raise ValueError(f"backward's mapping has no gradient for {missing}; expected keys {list(arrays)}")
        return {name: _checked_gradient(name, gradients[name], arrays[name]) for name in arrays}
    gradients = list(gradients)
    if len(gradients) != len(arrays):
        raise ValueError(
            f"backward returned {len(gradients)} gradients, expected {len(arrays)}: one per input {list(arrays)}"
        )
    return {name: _checked_gradient(name, g, arrays[name]) for name, g in zip(arrays, gradients)}


def _checked_gradient(name, gradient, array):
    """A copy of backward's gradient for `name`, after checking it has the shape of the array."""
    if gradient is None:
        raise ValueError(f"backward gave no gradient (None) for {name!r}, expected an array of shape {array.shape}")
    gradient = np.array(gradient, dtype=np.float64)
    if gradient.shape != array.shape:
        raise ValueError(f"the gradient of {name!r} has shape {gradient.shape}, expected {name}'s shape {array.shape}")
    return gradient


def _layer_parameters(layer, params):
    """[(name, array, gradient)] with gradient(backward_result) -> the array's gradient."""
    if params is not None:
        return [_explicit_parameter(i, entry) for i, entry in enumerate(params)]
    if hasattr(layer, "params"):
        return _params_list(layer)
    return _gradient_attributes(layer)


def _params_list(layer):
    """Document 000's protocol: layer.params, gradients returned as backward(...)[1]."""
    parameters = []
    for i, array in enumerate(layer.params):
        name = _attribute_name(layer, array, i)
        parameters.append((name, _parameter_array(name, array), _returned_gradient(i, len(layer.params))))
    return parameters


def _gradient_attributes(layer):
    """Document 001's protocol: each instance attribute NAME_grad whose NAME is an array."""
    parameters = []
    for grad_name in vars(layer):
        name = grad_name[:-len("_grad")]
        if grad_name.endswith("_grad") and isinstance(getattr(layer, name, None), np.ndarray):
            array = _parameter_array(name, getattr(layer, name))
            parameters.append((name, array, _attribute_gradient(layer, grad_name)))
    return parameters


def _explicit_parameter(i, entry):
    if not (isinstance(entry, (tuple, list)) and len(entry) == 3 and callable(entry[2])):
        raise TypeError(
            f"params[{i}] must be a tuple (name, array, get_grad) with get_grad callable, got {entry!r:.80}"
        )
    name, array, get_grad = entry
    return str(name), _parameter_array(str(name), array), lambda result: get_grad()


def _parameter_array(name, array):
    """The layer's own array, which the numerical pass perturbs in place: float and writeable."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"parameter {name!r} must be the layer's own ndarray, got {type(array).__name__}")
    if array.dtype.kind != "f":
        raise TypeError(f"parameter {name!r} must be a floating-point array, got dtype {array.dtype}")
    if not array.flags.writeable:
        raise ValueError(f"parameter {name!r} is read-only; check_layer perturbs parameters in place")
    return array


def _attribute_name(layer, array, i):
    """The public attribute of layer that is `array` itself, else 'params[i]'."""
    for name in dir(layer):
        if not name.startswith("_") and name != "params" and getattr(layer, name, None) is array:
            return name
    return f"params[{i}]"


def _returned_gradient(i, count):
    """gradient(result) -> result[1][i], after checking result is (grad_x, [count gradients])."""

    def gradient(result):
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], (list, tuple))):
            raise ValueError(
                "a layer with `params` must return (grad_x, [one gradient per parameter]) from backward, "
                f"got {type(result).__name__}"
            )
        if len(result[1]) != count:
            raise ValueError(
                f"backward returned {len(result[1])} parameter gradients, expected {count}: one per entry of params"
            )
        return result[1][i]

    return gradient


def _attribute_gradient(layer, grad_name):
    return lambda result: getattr(layer, grad_name)


def _compare(name, actual, expected, tolerances):
    """A CheckResult: actual against expected, elementwise allclose."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return CheckResult(name, actual.shape, math.inf, math.inf, False, actual, expected)
    error = np.abs(actual - expected)
    scale = np.maximum(np.abs(actual), np.abs(expected))
    relative = np.divide(error, scale, out=np.zeros_like(error), where=scale > 0)
    passed = bool(np.all(error <= tolerances.atol + tolerances.rtol * np.abs(expected)))
    return CheckResult(
        name, actual.shape, float(error.max(initial=0.0)), float(relative.max(initial=0.0)), passed, actual, expected
    )
