"""Run the cyconv benchmark suite from a checkout: ``python benchmarks/run.py [options]``.

A thin wrapper around ``cyconv._bench.main`` (the same code as ``python -m cyconv bench``) whose
output directory defaults to benchmarks/results/ (gitignored). ``--help`` lists the options.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "results")


def _import_bench():
    try:
        from cyconv import _bench
    except ImportError:
        # not installed: use the checkout this script lives in (extension built in place); the
        # workers, started with "spawn", inherit this sys.path
        sys.path.insert(0, os.path.dirname(HERE))
        from cyconv import _bench
    return _bench


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    # a later --out on the command line overrides this default (argparse: last one wins)
    return _import_bench().main(["--out", DEFAULT_OUT] + argv)


if __name__ == "__main__":
    sys.exit(main())
