"""The contenders: for one layer, each builds its inputs and returns the two calls that are timed.

A contender is a library in one layout; each runs in its own worker process (worker.py), which
calls `prepare`. All of them compute on the same float32 arrays (layers.make_inputs, converted to
their layout), except the bare GEMM, whose operands are random arrays of the products' shapes.

  cyconv      cyconv.conv2d(groups=G); forward + backward is conv2d then conv2d_backward (grad x,
              grad kernel, grad bias). A transposed layer: conv2d_transpose, then
              conv2d_transpose_backward. cyconv's defaults (threads, workspace) plus the keyword
              options given on the command line, passed to both functions.
  documents   the documents' NumPy method (documents.py) on NCHW data, or on NHWC data through
              transposed views.
  bare GEMM   the products cyconv's im2col + GEMM performs, on preallocated arrays with out=:
              what im2col + GEMM can at best reach. Its results mean nothing and are not checked.
  PyTorch     torch.nn.functional.conv2d(groups=G), or conv_transpose2d for a transposed layer, on
              NCHW-contiguous or channels_last tensors, with torch.set_num_threads(cores); forward
              under no_grad, forward + backward through autograd. Only where `import torch` works
              (prepare raises ImportError otherwise).

The documents' method and the bare GEMM know neither groups nor transposed convolutions:
not_applicable says so, and the runner skips them for that layer only.
"""
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import numpy as np

from .documents import documents_conv, documents_notes
from .environment import cores
from .layers import make_inputs, to_layout, to_nchw

TORCH_FORMATS = ("NCHW", "channels_last")


@dataclass(frozen=True)
class Contender:
    """A library ("cyconv", "documents", "bare GEMM", "PyTorch") in one layout ("NHWC", "NCHW",
    or PyTorch's "channels_last")."""

    library: str
    layout: str

    @property
    def name(self):
        return f"{self.library} {self.layout}"

    def serves(self, layout):
        """Whether this contender's times belong in the rows of `layout` (PyTorch's in both)."""
        return self.library == "PyTorch" or self.layout == layout


def contenders_for(layouts, with_torch):
    chosen = [Contender(library, layout) for library in ("cyconv", "documents", "bare GEMM") for layout in layouts]
    return chosen + ([Contender("PyTorch", fmt) for fmt in TORCH_FORMATS] if with_torch else [])


def not_applicable(contender, spec):
    """Why `contender` cannot compute the layer `spec` (a sentence), or None when it can."""
    if spec.groups == 1 and not spec.transposed:
        return None
    thing = "transposed convolution" if spec.transposed else f"grouped convolution (groups={spec.groups})"
    if contender.library == "documents":
        return f"the documents' method has no {thing}"
    if contender.library == "bare GEMM":
        return f"the bare GEMM times the products of a plain convolution, not of a {thing}"
    return None


class Prepared(NamedTuple):
    """A contender ready to run: the two timed calls, and how to read their results.

    results(forward_result, forward_backward_result) -> {"y", "y_fb", "grad_x", "grad_kernel",
    "grad_bias"} as NumPy arrays in NCHW order (grad_bias (F,)), or results is None (bare GEMM).
    traced: its allocations are NumPy's, which tracemalloc sees.
    """

    forward: Callable[[], object]
    forward_backward: Callable[[], object]
    results: Optional[Callable[[object, object], dict]]
    traced: bool


def _numpy_results(layout):
    def results(y, forward_backward):
        y_fb, (grad_x, grad_kernel, grad_bias) = forward_backward
        arrays = dict(y=y, y_fb=y_fb, grad_x=grad_x, grad_kernel=grad_kernel)
        return dict({name: to_nchw(a, layout) for name, a in arrays.items()}, grad_bias=grad_bias)

    return results


def _cyconv(spec, layout, options):
    import cyconv

    inputs = make_inputs(spec)
    x, kernel, grad_y = (to_layout(a, layout) for a in (inputs.x, inputs.kernel, inputs.grad_y))
    geometry = (spec.stride, spec.dilation, spec.padding)
    options = dict(options, layout=layout, groups=spec.groups)
    if spec.transposed:
        function, backward = cyconv.conv2d_transpose, cyconv.conv2d_transpose_backward
    else:
        function, backward = cyconv.conv2d, cyconv.conv2d_backward

    def forward():
        return function(x, kernel, inputs.bias, *geometry, **options)

    def forward_backward():
        return forward(), backward(grad_y, x, kernel, *geometry, **options)

    return Prepared(forward, forward_backward, _numpy_results(layout), traced=True)


def _documents(spec, layout, options):
    inputs = make_inputs(spec)
    x, kernel, grad_y = (to_layout(a, layout) for a in (inputs.x, inputs.kernel, inputs.grad_y))
    geometry = spec.geometry()

    def forward():
        return documents_conv(x, kernel, inputs.bias, geometry, layout)

    def forward_backward():
        return documents_conv(x, kernel, inputs.bias, geometry, layout, grad_y=grad_y)

    return Prepared(forward, forward_backward, _numpy_results(layout), traced=True)


def _bare_gemm(spec, layout, options):
    """NHWC: y(NP, F) = cols(NP, K) @ Wm.T;  dW(F, K) = gy.T @ cols;  dcols(NP, K) = gy @ Wm.
    NCHW: y(N, F, P) = Wm @ cols(N, K, P) (batched);  dcols(N, K, P) = Wm.T @ gy(N, F, P)
          (batched);  dW(F, K) = one (F, N*P) x (N*P, K) product over the same memory.
    (N images, P = OH * OW output pixels, K = C * k * k taps, F filters.)"""
    g = spec.geometry()
    n, f, k, p = spec.n, spec.f, spec.c * spec.k * spec.k, g.out_h * g.out_w
    rng = np.random.default_rng(1)
    wm, dw = rng.standard_normal((f, k), dtype=np.float32), np.empty((f, k), np.float32)
    if layout == "NHWC":
        cols, gy = rng.standard_normal((n * p, k), dtype=np.float32), rng.standard_normal((n * p, f), dtype=np.float32)
        y, dcols = np.empty((n * p, f), np.float32), np.empty((n * p, k), np.float32)
        products = [(cols, wm.T, y), (gy.T, cols, dw), (gy, wm, dcols)]
    else:
        cols, gy = rng.standard_normal((n, k, p), dtype=np.float32), rng.standard_normal((n, f, p), dtype=np.float32)
        y, dcols = np.empty((n, f, p), np.float32), np.empty((n, k, p), np.float32)
        products = [(wm, cols, y), (gy.reshape(f, n * p), cols.reshape(n * p, k), dw), (wm.T, gy, dcols)]

    def forward():
        a, b, out = products[0]
        np.matmul(a, b, out=out)

    def forward_backward():
        for a, b, out in products:
            np.matmul(a, b, out=out)

    return Prepared(forward, forward_backward, None, traced=True)


def _pytorch(spec, memory_format, options):
    import torch  # optional, never a dependency of cyconv; ImportError: PyTorch is skipped

    torch.set_num_threads(cores())
    functional = torch.nn.functional
    conv = functional.conv_transpose2d if spec.transposed else functional.conv2d
    g = spec.geometry()
    fmt = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
    inputs = make_inputs(spec)
    x, w, gy = (torch.from_numpy(a).contiguous(memory_format=fmt) for a in (inputs.x, inputs.kernel, inputs.grad_y))
    b = torch.from_numpy(inputs.bias)
    leaves = [t.detach().clone().requires_grad_(True) for t in (x, w, b)]
    pads = (g.pad_left, g.pad_right, g.pad_top, g.pad_bottom)  # F.pad's order
    symmetric = len(set(pads)) == 1

    def run(x, w, b):
        if not symmetric and not spec.transposed:
            x = functional.pad(x, pads)
        y = conv(x, w, b, stride=spec.stride, padding=pads[0] if symmetric else 0, dilation=spec.dilation + 1,
                 groups=spec.groups)
        if not symmetric and spec.transposed:  # the adjoint of padding: crop
            y = y[:, :, g.pad_top:g.pad_top + spec.h, g.pad_left:g.pad_left + spec.w]
        return y

    def forward():
        with torch.no_grad():
            return run(x, w, b)

    def forward_backward():
        for leaf in leaves:
            leaf.grad = None
        y = run(*leaves)
        y.backward(gy)
        return y.detach(), tuple(leaf.grad for leaf in leaves)

    def results(y, y_and_grads):
        y_fb, grads = y_and_grads
        return _numpy_results("NCHW")(y.numpy(), (y_fb.numpy(), tuple(t.numpy() for t in grads)))

    return Prepared(forward, forward_backward, results, traced=False)


_BUILDERS = {"cyconv": _cyconv, "documents": _documents, "bare GEMM": _bare_gemm, "PyTorch": _pytorch}


def prepare(contender, spec, cyconv_options):
    """Build `contender` for the layer `spec`; cyconv_options are extra conv2d keyword arguments."""
    return _BUILDERS[contender.library](spec, contender.layout, cyconv_options)


def notes(contender, spec):
    """How this contender computes the layer, where it is not the obvious call."""
    if contender.library == "documents":
        return documents_notes(spec, contender.layout)
    if contender.library != "PyTorch":
        return []
    g = spec.geometry()
    pads = (g.pad_top, g.pad_bottom, g.pad_left, g.pad_right)
    found = []
    symmetric = len(set(pads)) == 1
    if spec.transposed:
        found.append(f"PyTorch: F.conv_transpose2d(stride={spec.stride}, padding={pads[0] if symmetric else 0}), "
                     f"weight {spec.shapes()[1]} (in, out, k, k): cyconv's NCHW kernel as it is")
    if not symmetric:
        how = "the output cropped" if spec.transposed else "applied with F.pad, then padding=0"
        found.append(f"PyTorch: asymmetric SAME padding {pads}: {how}")
    if spec.dilation:
        found.append(f"PyTorch: dilation={spec.dilation + 1} (cyconv's dilation {spec.dilation} + 1)")
    return found
