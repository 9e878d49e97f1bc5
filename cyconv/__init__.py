"""cyconv: exact, fast 2-D convolution for NumPy, forward and backward, NHWC and NCHW."""
from .config import get_max_workspace, get_num_threads, set_max_workspace, set_num_threads
from .compat import col2im_indices, conv_backward, conv_forward, im2col_indices
from .functional import col2im, conv2d, conv2d_backward, im2col
from .geometry import Geometry, conv_geometry
from .gradcheck import CheckResult, GradcheckReport, check_conv2d, check_function, check_layer, conv2d_direct
from .layers import Conv, Convolution

__all__ = [
    "Conv",
    "CheckResult",
    "Convolution",
    "Geometry",
    "GradcheckReport",
    "check_conv2d",
    "check_function",
    "check_layer",
    "col2im",
    "col2im_indices",
    "conv2d",
    "conv2d_backward",
    "conv2d_direct",
    "conv_backward",
    "conv_forward",
    "conv_geometry",
    "get_max_workspace",
    "get_num_threads",
    "im2col",
    "im2col_indices",
    "set_max_workspace",
    "set_num_threads",
]
__version__ = "0.1.0"
