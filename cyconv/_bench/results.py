"""From raw block times to the reported rows: statistics, ratios, GFLOP/s, slowdowns, summary.

One row per (layer, layout, mode). Times are the spread (timing.spread) of every timed call of
every block of a contender, in ms; not_applicable lists the libraries that cannot compute the
layer (its ratios are then None). Ratios are of medians, and read:

  documents_over_cyconv   documents' time / cyconv's time   (> 1: cyconv is faster)
  cyconv_over_torch_best  cyconv's time / PyTorch's best    (< 1: cyconv is faster)
  gemm_over_cyconv        bare GEMM's time / cyconv's time  (the share of the products' own speed
                                                             cyconv reaches: at most about 1)
In contention mode a row also has each contender's slowdown, contended median / idle median, and
cyconv_slowdown_over_gemm's (<= 1: cyconv suffers no more than the bare GEMM).
"""
import statistics

from .layers import FLOP_MULTIPLIER, LAYOUTS, MODES
from .timing import spread


def _times_ms(blocks):
    return spread([1e3 * t for block in blocks for t in block])


def _ratio(numerator, denominator):
    return numerator / denominator if numerator and denominator else None


def _row_contenders(layer, layout):
    """{name in the row: contender name}: cyconv, documents and bare GEMM of this layout, and
    both PyTorch formats under their own names."""
    named = {}
    for name, contender in layer["contenders"].items():
        if contender["library"] == "PyTorch":
            named[name] = name
        elif contender["layout"] == layout:
            named[contender["library"]] = name
    return named


def _failure(layer, layout):
    """Why this layout's rows are not timed, or None."""
    if "timing_error" in layer:
        return f"timing stopped: {layer['timing_error'].strip().splitlines()[-1]}"
    check = layer["checks"][layout]
    failed = {name: layer["failures"][name] for name in check["contenders"] if name in layer["failures"]}
    if failed:
        return "; ".join(f"{name}: {text.strip().splitlines()[-1]}" for name, text in failed.items())
    if not check["ok"]:
        worst = {f"{other} {result}": c.get("bound_fraction", c.get("error"))
                 for other, each in check["comparisons"].items() for result, c in each.items() if not c["ok"]}
        if not worst:
            return "no result from cyconv"
        return "cyconv disagrees with " + ", ".join(f"{k} (error / bound {v})" for k, v in worst.items())
    return None


def layer_rows(layer, layouts):
    rows = []
    for layout in layouts:
        failure = _failure(layer, layout)
        for mode in MODES:
            row = {"layer_index": layer["index"], "layer": layer["label"], "layout": layout, "mode": mode,
                   "ok": failure is None, "failure": failure}
            if failure is None:
                row.update(_timed_row(layer, layout, mode))
            rows.append(row)
    return rows


def _timed_row(layer, layout, mode):
    named = _row_contenders(layer, layout)
    blocks = {short: layer["times"][full][mode] for short, full in named.items()}
    idle = {short: _times_ms(b["idle"]) for short, b in blocks.items()}
    median = {short: s["median"] for short, s in idle.items()}
    torch = [name for name in median if name.startswith("PyTorch")]
    best = min(torch, key=median.get) if torch else None
    row = {"times_ms": idle, "torch_best": best, "not_applicable": sorted(layer.get("not_applicable", {})),
           "documents_over_cyconv": _ratio(median.get("documents"), median["cyconv"]),
           "cyconv_over_torch_best": _ratio(median["cyconv"], median.get(best)),
           "gemm_over_cyconv": _ratio(median.get("bare GEMM"), median["cyconv"]),
           "flops": FLOP_MULTIPLIER[mode] * layer["forward_flops"],
           "cyconv_peak_bytes": layer["peak_bytes"].get(f"cyconv {layout}", {}).get(mode)}
    row["cyconv_gflops"] = row["flops"] / median["cyconv"] / 1e6
    if all("contended" in b for b in blocks.values()):
        contended = {short: _times_ms(b["contended"]) for short, b in blocks.items()}
        slowdown = {short: contended[short]["median"] / median[short] for short in contended}
        row.update(contended_ms=contended, slowdown=slowdown,
                   cyconv_slowdown_over_gemm=_ratio(slowdown["cyconv"], slowdown.get("bare GEMM")))
    return row


RATIOS = ("documents_over_cyconv", "cyconv_over_torch_best", "gemm_over_cyconv", "cyconv_slowdown_over_gemm")


def summarize(rows):
    """{scope: {mode: {ratio: median over the rows}}} for scope "all" and each layout."""
    summary = {}
    for scope in ("all",) + LAYOUTS:
        for mode in MODES:
            chosen = [r for r in rows if r["ok"] and r["mode"] == mode and scope in ("all", r["layout"])]
            if not chosen:
                continue
            values = {ratio: [r[ratio] for r in chosen if r.get(ratio) is not None] for ratio in RATIOS}
            summary.setdefault(scope, {})[mode] = dict(
                {ratio: statistics.median(v) for ratio, v in values.items() if v}, rows=len(chosen))
    return summary
