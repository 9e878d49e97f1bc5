"""A trained cyconv Convolution run over Dask arrays bigger than one chunk, against the in-memory call.

    python examples/dask_inference.py [--images 4096] [--size 32] [--chunk 512] [--scene 2048]
                                      [--tile 512] [--repeats 5] [--blas-threads N]
                                      [--scheduler threads|synchronous] [--seed 0] [--quiet]

Needs the dask extra (pip install "cyconv[dask]"). Three steps:

1. Train. A Convolution (3x3 SAME, 3 channels -> 4 filters, float32) learns a teacher's filters
   (a box blur, horizontal and vertical Sobel edges, a Laplacian) from random images by gradient
   descent on the mean squared error: NumPy + cyconv, seeded, well under a second.
2. Batch. The trained layer's forward over --images images of --size x --size pixels, a Dask array
   in chunks of --chunk images (one cyconv call per chunk), with Dask's progress bar, then timed
   against cyconv.conv2d on the same images in memory.
3. Scene. The same forward over one --scene x --scene image in --tile x --tile tiles: each tile
   borrows a one-pixel halo from its neighbours, and only the scene's true borders are padded.

The images are made in memory and wrapped with dask.array.from_array, so both calls compute the
same thing from the same memory and the ratio is what chunking costs (scheduling, the halo
exchange, assembling the result); with data in a Zarr store, reading it would come on top.
Timings are medians of --repeats runs, Dask and in-memory alternating. --scheduler threads (Dask's
default) runs chunks in parallel, which is what a user gets; --scheduler synchronous runs them
one at a time, which isolates what chunking costs. --blas-threads N holds NumPy's BLAS to N
threads for both calls (threadpoolctl), as Dask's distributed workers do; cyconv itself already
holds BLAS to one thread inside its calls, so this matters only for other NumPy work.

Each comparison also checks the results: both sum the same K = 3*3*3 + 1 terms per output, so
they differ by at most 2 gamma_K sum|terms| (gamma_K = K u / (1 - K u), u = 2**-24 in float32),
and the bound is printed beside the difference. The last line printed is always
`dask / in-memory throughput: batch R.RRx, scene R.RRx`.
"""
import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

try:
    import dask.array as da
    from dask.diagnostics import ProgressBar
except ImportError:
    raise SystemExit('this example needs Dask: pip install "cyconv[dask]"') from None

import cyconv
import cyconv.dask
from cyconv import Convolution


def teacher_kernel():
    """(4, 3, 3, 3): blur, Sobel x, Sobel y, Laplacian, each applied to the mean of the channels."""
    blur = np.full((3, 3), 1 / 9)
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 4
    laplacian = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]]) / 4
    filters = np.stack([blur, sobel_x, sobel_x.T, laplacian])
    return np.repeat(filters[..., None] / 3, 3, axis=-1).astype(np.float32)


def train(seed, steps=150, batch=16, lr=0.5):
    """A Convolution fitted to the teacher by gradient descent; returns (layer, relative error)."""
    rng = np.random.default_rng(seed)
    teacher = teacher_kernel()
    conv = Convolution((batch, 16, 16, 3), filters=4, kernel_size=3, padding="SAME", dtype=np.float32, seed=seed)
    for _ in range(steps):
        x = rng.standard_normal((batch, 16, 16, 3)).astype(np.float32)
        target = cyconv.conv2d(x, teacher, padding="SAME")
        y = conv(x)
        conv.backward(2 * (y - target) / y.size)  # d(mean squared error)/dy
        conv.kernel = conv.kernel - lr * conv.kernel_grad
        conv.bias -= lr * conv.bias_grad
    return conv, float(np.abs(conv.kernel - teacher).max() / np.abs(teacher).max())


def layer_arguments(conv):
    """What the layer passes to cyconv.conv2d; its forward also checks H and W against the
    input_shape it was built for, and a convolution applies to images of any size."""
    return dict(kernel=conv.kernel, bias=conv.bias, strides=conv.strides, dilations=conv.dilations,
                padding=conv.padding, pad_value=conv.pad_value)


def forward_in_memory(conv, x):
    return cyconv.conv2d(x, **layer_arguments(conv))


def forward_on_dask(conv, x):
    """The same forward on a Dask array: lazily, chunk by chunk."""
    return cyconv.dask.conv2d(x, **layer_arguments(conv))


def median_seconds(calls, repeats):
    """Median wall time of each call, the calls run alternately `repeats` times."""
    times = [[] for _ in calls]
    for _ in range(repeats):
        for call, spent in zip(calls, times):
            start = time.perf_counter()
            call()
            spent.append(time.perf_counter() - start)
    return [float(np.median(spent)) for spent in times]


def rate(value):
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def rounding_bound(conv, x):
    """2 gamma_K sum|terms| for every output of the layer on x (see the module docstring)."""
    terms = conv.kernel[0].size + 1
    gamma = terms * 2.0**-24 / (1 - terms * 2.0**-24)
    magnitudes = dict(layer_arguments(conv), kernel=np.abs(conv.kernel), bias=np.abs(conv.bias))
    return 2 * gamma * cyconv.conv2d(np.abs(x), **magnitudes)


def compare(name, conv, x, chunks, unit, per_call, args):
    """Run the layer over x in memory and as a Dask array in `chunks`; print and return the ratio."""
    lazy = forward_on_dask(conv, da.from_array(x, chunks=chunks))
    if args.quiet:
        y_dask = lazy.compute(scheduler=args.scheduler)
    else:
        print(f"{name}: {np.prod(lazy.numblocks)} chunks of {chunks}")
        with ProgressBar():
            y_dask = lazy.compute(scheduler=args.scheduler)
    excess = np.abs(y_dask - forward_in_memory(conv, x)) - rounding_bound(conv, x)
    worst = np.unravel_index(excess.argmax(), excess.shape)
    memory_s, dask_s = median_seconds(
        [lambda: forward_in_memory(conv, x), lambda: lazy.compute(scheduler=args.scheduler)], args.repeats
    )
    ratio = memory_s / dask_s
    print(f"{name}: in memory {rate(per_call / memory_s)} {unit}, Dask {rate(per_call / dask_s)} {unit} "
          f"({ratio:.2f}x); results {'agree' if excess[worst] <= 0 else 'DIFFER'} within the float32 bound")
    return ratio


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4096, help="images in the batch")
    parser.add_argument("--size", type=int, default=32, help="height and width of each image")
    parser.add_argument("--chunk", type=int, default=512, help="images per Dask chunk")
    parser.add_argument("--scene", type=int, default=2048, help="height and width of the single scene")
    parser.add_argument("--tile", type=int, default=512, help="height and width of the scene's tiles")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each call")
    parser.add_argument("--blas-threads", type=int, default=None, help="hold NumPy's BLAS to this many threads")
    parser.add_argument("--scheduler", choices=["threads", "synchronous"], default="threads",
                        help="Dask's scheduler: chunks in parallel, or one at a time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    conv, error = train(args.seed)
    print(f"trained in {time.perf_counter() - start:.2f} s: kernel within {error:.1e} of the teacher's (relative)")

    rng = np.random.default_rng(args.seed + 1)
    batch = rng.standard_normal((args.images, args.size, args.size, 3), dtype=np.float32)
    scene = rng.standard_normal((1, args.scene, args.scene, 3), dtype=np.float32)
    with threadpool_limits(args.blas_threads, "blas"):
        batch_ratio = compare("batch", conv, batch, (args.chunk, args.size, args.size, 3), "images/s", args.images,
                              args)
        scene_ratio = compare("scene", conv, scene, (1, args.tile, args.tile, 3), "MPix/s", args.scene**2 / 1e6, args)
    print(f"dask / in-memory throughput: batch {batch_ratio:.2f}x, scene {scene_ratio:.2f}x")


if __name__ == "__main__":
    main()
