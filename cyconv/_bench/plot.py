"""results.png: each contender's median time over cyconv's, per row, on a log scale (one panel per
mode). Above 1, cyconv is faster. Needs matplotlib, which is never a dependency of cyconv."""
import numpy as np

SERIES = (("documents", "documents' method"), ("PyTorch best", "PyTorch best"), ("bare GEMM", "bare GEMM"))


def _over_cyconv(row, name):
    times = row["times_ms"]
    key = row["torch_best"] if name == "PyTorch best" else name
    return times[key]["median"] / times["cyconv"]["median"] if key in times else np.nan


def write_plot(path, rows):
    """Write the chart; returns None, or a note saying why there is none."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as error:  # ImportError, or a broken backend
        return f"no results.png: matplotlib is not importable ({type(error).__name__}: {error})"
    timed = [r for r in rows if r["ok"]]
    if not timed:
        return "no results.png: no row was timed"
    modes = [m for m in ("forward", "forward_backward") if any(r["mode"] == m for r in timed)]
    fig, axes = plt.subplots(len(modes), 1, figsize=(max(8, 0.35 * len(timed) + 3), 4 * len(modes)), squeeze=False)
    for ax, mode in zip(axes[:, 0], modes):
        chosen = [r for r in timed if r["mode"] == mode]
        x = np.arange(len(chosen))
        for i, (name, label) in enumerate(SERIES):
            ax.bar(x + (i - 1) * 0.27, [_over_cyconv(r, name) for r in chosen], 0.27, label=label)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_ylabel("contender time / cyconv time")
        ax.set_title(f"{'forward' if mode == 'forward' else 'forward + backward'}, float32 (above 1: cyconv faster)")
        ax.set_xticks(x)
        ax.set_xticklabels([f"{r['layer_index']} {r['layout']}" for r in chosen], rotation=45, ha="right")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
