"""Is cyconv's result right? Its outputs against the documents' method's and PyTorch's, before
anything is timed, within a bound derived from the sums involved.

Every value compared is a sum of at most K products of the same float inputs. Computed in any
order, a floating-point result of such a sum lies within gamma_K * S of the exact sum, where
gamma_K = K u / (1 - K u), u is the unit roundoff (2**-24 for float32) and S is the sum of the
absolute values of the terms (Higham, Accuracy and Stability of Numerical Algorithms, 3.1). Two
correct results therefore differ by at most 2 gamma_K S, element by element; a larger difference
is a wrong result, whatever BLAS kernel or summation order either side used. K per value:

  y, y_fb      C * e * e + 1    e = the dilated kernel's extent (the documents' formulation adds
  grad_x       F * e * e            zero taps), + 1 for the bias
  grad_kernel  N * OH * OW
  grad_bias    N * OH * OW

S comes from the documents' method in float64 on |x|, |kernel|, |bias| and |grad_y|; its own
rounding (about K * 2**-53 of S) is negligible beside gamma_K for float32.

A 3x3 stride-1 layer's y and grad_x may come from Winograd F(m x m, 3x3) (cyconv's "auto" takes
F(2x2) there; --cyconv-option algorithm=winograd_4x4 asks for F(4x4)), whose error is at most
gamma_{C+p} Y_abs (p = 12 for m = 2, 18 for m = 4; derived in cyconv's tests/test_winograd.py),
Y_abs the algorithm run on absolute values. Each output's Y_abs is at most
mu_m**2 * sum_c |g_c|_1 * (sum of |x_c| over the (2m + 1) x (2m + 1) taps around it), mu_m the
largest entry of sum_a |A^T[k, a]| |G[a, i]| |B^T[a, l]| (2 for m = 2, 32/3 for m = 4): the
documents' method computes that as a convolution of |x| with a box kernel. Those rows then allow
gamma_K S + gamma_{C+p} R, the documents' error plus Winograd's.
"""
import numpy as np

from cyconv import conv_geometry

from .documents import documents_conv

FLOAT32_UNIT_ROUNDOFF = 2.0**-24


def term_counts(spec):
    """K, the most terms any method sums for one value of each result."""
    g = spec.geometry()
    taps, pixels = spec.extent() ** 2, spec.n * g.out_h * g.out_w
    return {"y": spec.c * taps + 1, "y_fb": spec.c * taps + 1, "grad_x": spec.f * taps,
            "grad_kernel": pixels, "grad_bias": pixels}


def gamma(k, u):
    return k * u / (1 - k * u)


# mu_m (see the module docstring) and the roundings p of Winograd F(m x m, 3x3), by tile m.
WINOGRAD_MU = {2: 2.0, 4: 32 / 3}
WINOGRAD_ROUNDINGS = {2: 12, 4: 18}


def bounds(spec, inputs, unit_roundoff=FLOAT32_UNIT_ROUNDOFF, winograd_tile=2):
    """{result name: the element-wise bound on |cyconv - documents| (float64, NCHW)} for the
    layer's inputs: 2 gamma_K S, and for a 3x3 stride-1 layer's y and grad_x, gamma_K S + Winograd's
    bound with tiles of winograd_tile."""
    x, kernel, bias, grad_y = (np.abs(a).astype(np.float64) for a in inputs)
    y, (grad_x, grad_kernel, grad_bias) = documents_conv(x, kernel, bias, spec.geometry(), "NCHW", grad_y=grad_y)
    sums = {"y": y, "y_fb": y, "grad_x": grad_x, "grad_kernel": grad_kernel, "grad_bias": grad_bias}
    counts = term_counts(spec)
    result = {name: 2 * gamma(counts[name], unit_roundoff) * s for name, s in sums.items()}
    if (spec.k, spec.stride) == (3, 1):
        m = winograd_tile
        flipped = np.ascontiguousarray(kernel[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        for name, data, weights, channels in (("y", x, kernel, spec.c), ("y_fb", x, kernel, spec.c),
                                              ("grad_x", grad_y, flipped, spec.f)):
            scale = _winograd_scale(spec, data, weights, m, name == "grad_x")
            extra = gamma(channels + WINOGRAD_ROUNDINGS[m], unit_roundoff) * scale
            if name != "grad_x":
                extra = extra + gamma(channels + WINOGRAD_ROUNDINGS[m], unit_roundoff) * bias[:, None, None]
            result[name] = gamma(counts[name], unit_roundoff) * sums[name] + extra
    return result


def _winograd_scale(spec, data, weights, m, flipped):
    """R: mu_m**2 * sum_c |g_fc|_1 * the sum of |data_c| over the (2m + 1)**2 taps (dilated as the
    layer) from m - 1 before to m + 1 after each output's first tap; NCHW, stride 1, same output
    size as the layer (y), or as its input (grad_x of the flipped kernel, data = grad_y)."""
    g = spec.geometry()
    if flipped:  # the input gradient: grad_y padded by extent - 1 - pad, the input's size out
        pad_top, pad_left = 2 * (g.dilation_h + 1) - g.pad_top, 2 * (g.dilation_w + 1) - g.pad_left
        out_h, out_w = spec.h, spec.w
    else:
        pad_top, pad_left, out_h, out_w = g.pad_top, g.pad_left, g.out_h, g.out_w
    taps, step = 2 * m + 1, spec.dilation + 1
    box = np.broadcast_to(np.abs(weights).sum(axis=(2, 3))[:, :, None, None],
                          weights.shape[:2] + (taps, taps)).copy()
    top, left = pad_top + (m - 1) * step, pad_left + (m - 1) * step
    bottom = (out_h - 1) + (taps - 1) * step + 1 - data.shape[2] - top
    right = (out_w - 1) + (taps - 1) * step + 1 - data.shape[3] - left
    # negative paddings crop; the box reads zeros beyond the padded input
    padded = np.pad(data, ((0, 0), (0, 0), (max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))))
    padded = padded[:, :, max(-top, 0):padded.shape[2] - max(-bottom, 0),
                    max(-left, 0):padded.shape[3] - max(-right, 0)]
    geometry = conv_geometry(padded.shape[2:], (taps, taps), 1, spec.dilation, "VALID")
    return WINOGRAD_MU[m] ** 2 * documents_conv(padded, box, None, geometry, "NCHW")


def compare(actual, expected, bound):
    """{max_abs_error, bound_fraction (max of |error| / bound: at most 1 passes), ok}."""
    if np.shape(actual) != np.shape(expected):
        return {"ok": False, "error": f"shape {np.shape(actual)} != {np.shape(expected)}"}
    error = np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))
    fraction = np.divide(error, bound, out=np.where(error > 0, np.inf, 0.0), where=bound > 0)
    worst = float(fraction.max()) if fraction.size else 0.0
    return {"ok": worst <= 1.0, "max_abs_error": float(error.max()) if error.size else 0.0,
            "bound_fraction": worst}


def compare_results(actual, expected, result_bounds):
    """compare() for every result (y, y_fb, grad_x, grad_kernel, grad_bias) of two contenders."""
    return {name: compare(actual[name], expected[name], bound) for name, bound in result_bounds.items()}
