"""cyconv: exact, fast 2-D convolution for NumPy, forward and backward, NHWC and NCHW."""
import os

try:
    from . import _im2col  # noqa: F401  (the compiled module; everything below needs it)
except ImportError as error:
    raise ImportError(
        f"cyconv's compiled kernels are missing from {os.path.dirname(__file__)}: this looks like "
        "cyconv's source folder rather than an installed copy (Python imports it first when run "
        "from the repository's top folder). Install with 'pip install .' and run from another "
        "folder, or build in place with 'pip install -e .'."
    ) from error

from ._config import get_max_workspace, get_num_threads, set_max_workspace, set_num_threads
from .compat import Conv, col2im_indices, conv_backward, conv_forward, im2col_indices
from .convgrad import ConvGrad
from .functional import (
    col2im,
    conv1d,
    conv1d_backward,
    conv2d,
    conv2d_backward,
    conv2d_transpose,
    conv2d_transpose_backward,
    depthwise_conv2d,
    im2col,
)
from ._geometry import Geometry, conv_geometry
from .gradcheck import CheckResult, GradcheckReport, check_conv2d, check_function, check_layer, conv2d_direct
from .layers import Conv1D, Convolution, ConvolutionTranspose

__all__ = [
    "Conv",
    "Conv1D",
    "CheckResult",
    "ConvGrad",
    "Convolution",
    "ConvolutionTranspose",
    "Geometry",
    "GradcheckReport",
    "check_conv2d",
    "check_function",
    "check_layer",
    "col2im",
    "col2im_indices",
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "conv2d_transpose",
    "conv2d_transpose_backward",
    "conv2d_direct",
    "conv_backward",
    "conv_forward",
    "conv_geometry",
    "depthwise_conv2d",
    "get_max_workspace",
    "get_num_threads",
    "im2col",
    "im2col_indices",
    "set_max_workspace",
    "set_num_threads",
]
__version__ = "0.1.0"
