"""What the results were measured on: the machine, the libraries and their thread settings.

machine() runs in the parent; libraries() runs in each worker, after its contender is built, so it
sees the thread pools that contender loaded (threadpoolctl: BLAS vendor, version, core type and
thread count; OpenMP runtimes) and the versions and thread counts of cyconv and PyTorch.
"""
import datetime
import os
import platform
import sys

THREAD_VARIABLES = ("CYCONV_NUM_THREADS", "CYCONV_MAX_WORKSPACE", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                    "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cores():
    """The CPUs this process may run on (its affinity mask), else the logical CPU count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average():
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def thread_pools():
    """threadpoolctl's view of the BLAS and OpenMP libraries loaded in this process."""
    from threadpoolctl import threadpool_info

    keys = ("user_api", "internal_api", "version", "architecture", "num_threads", "threading_layer", "filepath")
    return [{key: pool[key] for key in keys if key in pool} for pool in threadpool_info()]


def machine():
    """The parent's record of the machine and the run (CPU, cores, Python, date, load)."""
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "cores_available": cores(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "thread_environment": {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ},
        "load_average_at_start": load_average(),
    }


def libraries():
    """Versions and thread settings of the libraries loaded in this (worker) process."""
    import numpy

    info = {"numpy": numpy.__version__, "thread_pools": thread_pools()}
    if "cyconv" in sys.modules:
        import cyconv

        info.update(cyconv=cyconv.__version__, cyconv_threads=cyconv.get_num_threads(),
                    cyconv_max_workspace=cyconv.get_max_workspace())
    if "torch" in sys.modules:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
                    torch_interop_threads=torch.get_num_interop_threads())
    return info


def blas_summary(pools):
    """One line on the BLAS in `pools`: vendor, version, core type, threads."""
    for pool in pools:
        if pool.get("user_api") == "blas":
            return (f"{pool.get('internal_api')} {pool.get('version')} ({pool.get('architecture')} kernels, "
                    f"{pool.get('num_threads')} threads, {pool.get('threading_layer')})")
    return "no BLAS found by threadpoolctl"
