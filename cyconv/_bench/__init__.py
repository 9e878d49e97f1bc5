"""The benchmark suite (private): ``python -m cyconv bench`` or ``python benchmarks/run.py``.

Times cyconv's conv2d (conv2d_transpose for a transposed layer) forward and forward + backward
against the documents' NumPy method, PyTorch (when installed) and the bare GEMM, each contender in
its own process. One module per concern:

  layers.py      the layers (LayerSpec, LAYERS) and their inputs
  documents.py   the documents' NumPy method, the baseline
  contenders.py  each contender's inputs and timed calls
  worker.py      a contender's process, and the parent's handle on it
  timing.py      one block of timed calls; median and spread
  contention.py  the busy process of contention mode
  check.py       cyconv's results against the baselines, within a derived error bound
  runner.py      the parent's schedule: workers, check, rounds of blocks
  environment.py machine, library versions, thread settings
  results.py     rows of medians, spreads, ratios, slowdowns; the summary
  report.py      terminal table, results.md, results.json (plot.py: results.png)
  cli.py         the command line, main(argv)
"""
from .cli import main

__all__ = ["main"]
