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
"""
import numpy as np

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


def bounds(spec, inputs, unit_roundoff=FLOAT32_UNIT_ROUNDOFF):
    """{result name: the element-wise bound 2 gamma_K S (float64, NCHW)} for the layer's inputs."""
    x, kernel, bias, grad_y = (np.abs(a).astype(np.float64) for a in inputs)
    y, (grad_x, grad_kernel, grad_bias) = documents_conv(x, kernel, bias, spec.geometry(), "NCHW", grad_y=grad_y)
    sums = {"y": y, "y_fb": y, "grad_x": grad_x, "grad_kernel": grad_kernel, "grad_bias": grad_bias}
    counts = term_counts(spec)
    return {name: 2 * gamma(counts[name], unit_roundoff) * s for name, s in sums.items()}


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
