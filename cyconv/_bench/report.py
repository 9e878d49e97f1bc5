"""The tables: on the terminal as each layer finishes, and results.md / results.json at the end
(results.png, when matplotlib is importable, comes from plot.py).

Time cells read "median [first quartile-third quartile] minimum-maximum", in ms, over every timed
call of every block of the contender; "n/a" where the contender cannot compute the layer (the notes
say why), "-" where it did not run. The ratio columns say in their header which way they read.
"""
import json
import os

from .environment import blas_summary
from .plot import write_plot

MODE_LABELS = {"forward": "fwd", "forward_backward": "fwd+bwd"}
TIME_LEGEND = ("Time cells: median [interquartile range] min-max of every timed call, in ms "
               "(n/a: not applicable to the layer, see the notes).")
RATIO_LEGEND = ("Ratios of medians: docs/cy = documents / cyconv (> 1: cyconv faster); cy/torch = cyconv / "
                "PyTorch best (< 1: cyconv faster); GEMM/cy = bare GEMM / cyconv (the share of the GEMM's speed).")
# (markdown header, terminal header, terminal width); the ratio headers say which way they read
COLUMNS = (
    ("#", "#", 2), ("layer", "layer", 39), ("layout", "layout", 6), ("mode", "mode", 7),
    ("cyconv ms", "cyconv ms", 27), ("GFLOP/s", "GFLOP/s", 7), ("documents ms", "documents ms", 27),
    ("PyTorch best ms", "PyTorch best ms", 33), ("bare GEMM ms", "bare GEMM ms", 27),
    ("documents/cyconv (>1: cyconv faster)", "docs/cy", 7),
    ("cyconv/PyTorch best (<1: cyconv faster)", "cy/torch", 8),
    ("bare GEMM/cyconv (share of GEMM speed)", "GEMM/cy", 7), ("peak MiB", "peak MiB", 8),
)
CONTENTION_LEGEND = "Each cell: idle median -> contended median (slowdown = contended / idle), ms."
CONTENTION_CONTENDERS = ("cyconv", "bare GEMM", "documents", "PyTorch NCHW", "PyTorch channels_last")
CONTENTION_COLUMNS = COLUMNS[:4] + tuple((f"{name} ms", f"{name} ms", 22) for name in CONTENTION_CONTENDERS) + (
    ("cyconv slowdown / GEMM slowdown (<=1: target met)", "cy/GEMM slowdown", 16),)


def _number(value):
    """Three significant figures or so."""
    if value is None:
        return "-"
    for limit, text in ((100, f"{value:.0f}"), (10, f"{value:.1f}"), (1, f"{value:.2f}")):
        if value >= limit:
            return text
    return f"{value:.3f}"


def _ratio(value):
    return "-" if value is None else f"{_number(value)}x"


def _time_cell(s, not_applicable=False):
    if s is None:
        return "n/a" if not_applicable else "-"
    return f"{_number(s['median'])} [{_number(s['q1'])}-{_number(s['q3'])}] {_number(s['min'])}-{_number(s['max'])}"


def _lead(row):
    return [str(row["layer_index"]), row["layer"], row["layout"], MODE_LABELS[row["mode"]]]


def row_cells(row):
    if not row["ok"]:
        return _lead(row) + [f"NOT TIMED: {row['failure']}"]
    times, best = row["times_ms"], row["torch_best"]
    peak, skipped = row["cyconv_peak_bytes"], row.get("not_applicable", [])
    return _lead(row) + [
        _time_cell(times["cyconv"]), _number(row["cyconv_gflops"]),
        _time_cell(times.get("documents"), "documents" in skipped),
        _time_cell(times.get(best)) + (f" {best.split()[1]}" if best else ""),
        _time_cell(times.get("bare GEMM"), "bare GEMM" in skipped),
        _ratio(row["documents_over_cyconv"]), _ratio(row["cyconv_over_torch_best"]), _ratio(row["gemm_over_cyconv"]),
        "-" if peak is None else f"{peak / 2**20:.1f}",
    ]


def contention_cells(row):
    cells = _lead(row)
    for name in CONTENTION_CONTENDERS:
        if name not in row["slowdown"]:
            cells.append("-")
            continue
        idle, contended = row["times_ms"][name]["median"], row["contended_ms"][name]["median"]
        cells.append(f"{_number(idle)} -> {_number(contended)} ({_ratio(row['slowdown'][name])})")
    return cells + [_ratio(row["cyconv_slowdown_over_gemm"])]


def text_line(cells, columns=COLUMNS):
    widths = [width for _, _, width in columns]
    return "  ".join(c.ljust(w) if i == 1 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))


def text_header(columns=COLUMNS):
    return text_line([header for _, header, _ in columns], columns)


def _markdown_table(header, cell_rows):
    align = ["---" if i in (1, 2, 3) else "---:" for i in range(len(header))]
    return ["| " + " | ".join(cells) + " |" for cells in [header] + [align] + cell_rows]


def summary_lines(summary):
    names = {"documents_over_cyconv": "documents/cyconv", "cyconv_over_torch_best": "cyconv/PyTorch best",
             "gemm_over_cyconv": "bare GEMM/cyconv", "cyconv_slowdown_over_gemm": "cyconv slowdown/GEMM slowdown"}
    lines = []
    for scope, modes in summary.items():
        for mode, values in modes.items():
            where = "all rows" if scope == "all" else f"{scope} rows"
            ratios = ", ".join(f"{label} {_ratio(values[key])}" for key, label in names.items() if key in values)
            lines.append(f"Medians over {values['rows']} {MODE_LABELS[mode]} {where}: "
                         + (ratios or "no ratio (cyconv ran alone)"))
    return lines


def _method_line(settings):
    plan = settings["plan"]
    return (f"Method: each contender in its own worker process (spawn), one process working at a time; contenders "
            f"take turns block by block, the order rotated each round; {settings['rounds']} round(s) per layer. A "
            f"block runs its contender untimed for {plan['warmup_seconds']} s, then times {plan['min_calls']}-"
            f"{plan['max_calls']} calls (about {plan['timed_seconds']} s), perf_counter per call. float32."
            + (" QUICK: batches 8x smaller (a smoke run)." if settings["quick"] else "")
            + (" --contention: every block also run beside a process spinning a pure-Python loop."
               if settings["contention"] else ""))


def _threads_line(libraries, cyconv_options):
    cy = next((v for k, v in libraries.items() if k.startswith("cyconv")), {})
    torch = next((v for k, v in libraries.items() if k.startswith("PyTorch")), None)
    options = ", ".join(f"{k}={v!r}" for k, v in cyconv_options.items())
    return (f"Threads: cyconv {cy.get('cyconv')} with its defaults ({cy.get('cyconv_threads')} kernel thread(s), "
            f"{cy.get('cyconv_max_workspace', 0) / 2**20:g} MiB workspace" + (f"; options {options}" if options else "")
            + f"); NumPy {cy.get('numpy')}'s BLAS with its defaults: {blas_summary(cy.get('thread_pools', []))}; "
            + (f"PyTorch {torch['torch']} with torch.set_num_threads({torch['torch_threads']})." if torch
               else "PyTorch not run."))


def _machine_line(meta):
    return (f"Machine: {meta['cpu_model']}, {meta['cores_available']} cores available ({meta['logical_cpus']} "
            f"logical CPUs); Python {meta['python']}; load average {meta['load_average_at_start']} at start, "
            f"{meta.get('load_average_at_end')} at end; {meta['date']}; {meta.get('elapsed_seconds', 0):.0f} s."
            + (f" Environment: {meta['thread_environment']}." if meta["thread_environment"] else ""))


def settings_lines(meta):
    """The method, the thread settings and the machine, stated."""
    return [_method_line(meta["settings"]), _threads_line(meta["libraries"], meta["settings"]["cyconv_options"]),
            _machine_line(meta)]


def write_markdown(path, meta, rows, summary, notes):
    lines = ["# cyconv benchmark", ""] + [line + "\n" for line in settings_lines(meta)]
    lines += ["## Results", "", TIME_LEGEND + " Ratios are of medians.", ""]
    cells = [row_cells(r) for r in rows]
    lines += _markdown_table([h for h, _, _ in COLUMNS], [c + [""] * (len(COLUMNS) - len(c)) for c in cells])
    contended = [r for r in rows if r["ok"] and "slowdown" in r]
    if contended:
        lines += ["", "## Beside a busy process (--contention)", "", CONTENTION_LEGEND, ""]
        lines += _markdown_table([h for h, _, _ in CONTENTION_COLUMNS], [contention_cells(r) for r in contended])
    lines += ["", "## Summary", ""] + [f"- {line}" for line in summary_lines(summary)]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def write_all(out, meta, layers, rows, summary, notes):
    """results.png (when matplotlib works), results.json and results.md in `out`; returns the files."""
    os.makedirs(out, exist_ok=True)
    written = ["results.json", "results.md"]
    plot_note = write_plot(os.path.join(out, "results.png"), rows)
    if plot_note:
        notes = notes + [plot_note]
    else:
        written.append("results.png")
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as handle:
        json.dump({"meta": meta, "rows": rows, "summary": summary, "notes": notes, "layers": layers}, handle, indent=1)
    write_markdown(os.path.join(out, "results.md"), meta, rows, summary, notes)
    return [os.path.join(out, name) for name in written]


def print_end(meta, rows, summary, notes, files):
    """The end of the terminal output: the contention table, the settings, summary and notes."""
    contended = [r for r in rows if r["ok"] and "slowdown" in r]
    if contended:
        print(f"\nBeside a busy process. {CONTENTION_LEGEND}")
        print(text_header(CONTENTION_COLUMNS))
        for row in contended:
            print(text_line(contention_cells(row), CONTENTION_COLUMNS))
    print()
    for line in settings_lines(meta) + summary_lines(summary):
        print(line)
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {', '.join(files)}")
