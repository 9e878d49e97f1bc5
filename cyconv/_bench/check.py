"""Is cyconv's result right? Its outputs against the documents' method's and PyTorch's, before
anything is timed, within a bound derived from the sums involved.

Every value compared is a sum of at most K products of the same float inputs. Computed in any
order, a floating-point result of such a sum lies within gamma_K * S of the exact sum, where
gamma_K = K u / (1 - K u), u is the unit roundoff (2**-24 for float32) and S is the sum of the
absolute values of the terms (Higham, Accuracy and Stability of Numerical Algorithms, 3.1). Two
correct results therefore differ by at most 2 gamma_K S, element by element; a larger difference
is a wrong result, whatever BLAS kernel or summation order either side used. K per value:

  y, y_fb      C / G * e * e + 1    e = the dilated kernel's extent (the documents' formulation
  grad_x       F / G * e * e            adds zero taps), + 1 for the bias; G the groups
  grad_kernel  N * OH * OW
  grad_bias    N * OH * OW

S comes from the documents' method in float64 on |x|, |kernel|, |bias| and |grad_y|, run on each
group's channels and filters separately for G > 1; its own rounding (about K * 2**-53 of S) is
negligible beside gamma_K for float32.

A transposed layer (layers.py) is the adjoint of its convolution u (C -> F channels, H x W ->
OH x OW): its output is u's grad_x of the timed input x, plus the bias (K = F / G * e * e + 1);
its grad_x is u's forward output of the upstream gradient grad_y (K = C / G * e * e); its
grad_kernel is u's kernel gradient with x = grad_y and grad_y = x (K = N * OH * OW); its
grad_bias sums grad_y over N * H * W pixels. S comes from the same documents' calls on those
absolute values.

A 3x3 stride-1 layer without groups, not transposed, may have its y and grad_x from Winograd
F(m x m, 3x3) (cyconv's "auto" takes F(2x2) there; --cyconv-option algorithm=winograd_4x4 asks
for F(4x4)), whose error is at most
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
    per_channel, per_filter = spec.c // spec.groups * taps, spec.f // spec.groups * taps
    if spec.transposed:
        return {"y": per_filter + 1, "y_fb": per_filter + 1, "grad_x": per_channel,
                "grad_kernel": pixels, "grad_bias": spec.n * spec.h * spec.w}
    return {"y": per_channel + 1, "y_fb": per_channel + 1, "grad_x": per_filter,
            "grad_kernel": pixels, "grad_bias": pixels}


def gamma(k, u):
    return k * u / (1 - k * u)


# mu_m (see the module docstring) and the roundings p of Winograd F(m x m, 3x3), by tile m.
WINOGRAD_MU = {2: 2.0, 4: 32 / 3}
WINOGRAD_ROUNDINGS = {2: 12, 4: 18}


def bounds(spec, inputs, unit_roundoff=FLOAT32_UNIT_ROUNDOFF, winograd_tile=2):
    """{result name: the element-wise bound on |cyconv - documents| (float64, NCHW)} for the
    layer's inputs: 2 gamma_K S, and for a 3x3 stride-1 layer's y and grad_x (no groups, not
    transposed), gamma_K S + Winograd's bound with tiles of winograd_tile."""
    x, kernel, bias, grad_y = (np.abs(a).astype(np.float64) for a in inputs)
    if spec.transposed:  # the adjoint of u: u's input is the upstream gradient, u's grad_y is x
        u_y, u_grad_x, u_grad_kernel = _sums(spec, grad_y, kernel, x)
        y, grad_x, grad_kernel = u_grad_x + bias[:, None, None], u_y, u_grad_kernel
    else:
        y, grad_x, grad_kernel = _sums(spec, x, kernel, grad_y)
        y = y + bias[:, None, None]
    sums = {"y": y, "y_fb": y, "grad_x": grad_x, "grad_kernel": grad_kernel, "grad_bias": grad_y.sum(axis=(0, 2, 3))}
    counts = term_counts(spec)
    result = {name: 2 * gamma(counts[name], unit_roundoff) * s for name, s in sums.items()}
    if (spec.k, spec.stride, spec.groups, spec.transposed) == (3, 1, 1, False):
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


def _sums(spec, x, kernel, grad_y):
    """The documents' y (without bias), grad_x and grad_kernel of the spec's convolution (not its
    transpose) on these NCHW float64 arrays, each group on its own channels and filters."""
    channels, filters = spec.c // spec.groups, spec.f // spec.groups
    parts = [documents_conv(x[:, g * channels:(g + 1) * channels], kernel[g * filters:(g + 1) * filters], None,
                            spec.geometry(), "NCHW", grad_y=grad_y[:, g * filters:(g + 1) * filters])
             for g in range(spec.groups)]
    y = np.concatenate([part[0] for part in parts], axis=1)
    grad_x = np.concatenate([part[1][0] for part in parts], axis=1)
    return y, grad_x, np.concatenate([part[1][1] for part in parts], axis=0)


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
