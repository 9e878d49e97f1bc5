"""cyconv: exact, fast 2-D convolution for NumPy, forward and backward, NHWC and NCHW."""
from .config import get_max_workspace, get_num_threads, set_max_workspace, set_num_threads
from .functional import col2im, conv2d, conv2d_backward, im2col
from .geometry import Geometry, conv_geometry
from .layers import Convolution

__all__ = [
    "Convolution",
    "Geometry",
    "col2im",
    "conv2d",
    "conv2d_backward",
    "conv_geometry",
    "get_max_workspace",
    "get_num_threads",
    "im2col",
    "set_max_workspace",
    "set_num_threads",
]
__version__ = "0.1.0"
