"""The parent's schedule: for each layer, start one worker per contender, check, then time.

Per layer:
  1. start the workers (all at once: building is not timed) and compute the error bounds;
  2. check: each worker runs one forward and one forward + backward call and sends its results;
     cyconv's are compared with the documents' method's and PyTorch's (check.py). A layout whose
     check fails (or whose contenders crashed) is not timed;
  3. time, in `rounds` rounds: a round gives every (contender, mode[, condition]) one block
     (timing.py), one worker at a time, the order rotated by one from round to round. In
     contention mode each pair gets an idle block and a block beside the busy process.
A contender whose library cannot be imported (PyTorch) is dropped for the rest of the run, with
a note. A contender that cannot compute a layer (contenders.not_applicable: the documents' method
and the bare GEMM on grouped or transposed layers) is skipped for that layer only, with a note.
A layout in which no other contender has results to compare cyconv's with is timed, and a note
says its results were not checked.
"""
import contextlib
import sys
from dataclasses import dataclass, field

from . import check
from .contenders import contenders_for, not_applicable, notes
from .contention import BusyProcess
from .layers import LAYERS, MODES, make_inputs
from .timing import BlockPlan
from .worker import Worker, WorkerError


@dataclass(frozen=True)
class Settings:
    """What to run: layer indices, layouts, rounds, options (see cli.py)."""

    layers: tuple
    layouts: tuple
    rounds: int
    quick: bool = False
    with_torch: bool = True
    contention: bool = False
    cyconv_options: dict = field(default_factory=dict)
    plan: BlockPlan = BlockPlan()

    @property
    def conditions(self):
        return ("idle", "contended") if self.contention else ("idle",)


def log(text):
    print(text, file=sys.stderr, flush=True)


def run_suite(settings, on_layer):
    """Run every selected layer; on_layer(layer) is called as each finishes. Returns
    {"layers": [...], "libraries": {contender: versions and threads}, "notes": [...]}."""
    suite = {"layers": [], "libraries": {}, "notes": []}
    contenders = contenders_for(settings.layouts, settings.with_torch)
    with BusyProcess() if settings.contention else contextlib.nullcontext() as busy:
        for index in settings.layers:
            spec = LAYERS[index].quick() if settings.quick else LAYERS[index]
            layer = run_layer(index, spec, contenders, settings, busy)
            for name, reason in layer.pop("unavailable").items():
                suite["notes"].append(f"{name} skipped: {reason}")
                contenders = [c for c in contenders if c.name != name]
            for name, info in layer.pop("libraries").items():
                suite["libraries"].setdefault(name, info)
            suite["layers"].append(layer)
            on_layer(layer)
    return suite


def run_layer(index, spec, contenders, settings, busy):
    """One layer: {"index", "label", "shape", "forward_flops", "notes", "not_applicable" {library:
    reason}, "checks" {layout: ...}, "failures" {contender: error}, "peak_bytes" {contender: {mode:
    bytes}}, "contenders" (the timed ones: {name: {library, layout}}), "times" {name: {mode:
    {condition: [[seconds] per block]}}}}."""
    skipped = {c.library: not_applicable(c, spec) for c in contenders if not_applicable(c, spec)}
    contenders = [c for c in contenders if c.library not in skipped]
    layer = {"index": index, "label": spec.label(), "shape": spec.describe(), "forward_flops": spec.forward_flops(),
             "notes": list(dict.fromkeys(n for c in contenders for n in notes(c, spec)))
             + [f"{library} not run on this layer: {reason}" for library, reason in skipped.items()],
             "not_applicable": skipped,
             "libraries": {}, "unavailable": {}, "failures": {}, "peak_bytes": {}, "contenders": {}, "times": {}}
    log(f"layer {index} {spec.label()}: starting {len(contenders)} workers")
    workers = [Worker(c, spec, settings.cyconv_options) for c in contenders]
    try:
        tile = 4 if settings.cyconv_options.get("algorithm") == "winograd_4x4" else 2
        result_bounds = check.bounds(spec, make_inputs(spec), winograd_tile=tile)
        ready = _ready(workers, layer)
        log(f"layer {index}: checking")
        results = _results(ready, layer)
        layer["checks"] = {layout: _check(layout, contenders, results, result_bounds, layer["failures"])
                           for layout in settings.layouts}
        layer["notes"] += [f"{layout}: cyconv's results not checked (no other contender computed this layer)"
                           for layout, each in layer["checks"].items() if each["ok"] and not each["comparisons"]]
        timed = [w for w in ready if any(layer["checks"][layout]["ok"] and w.contender.serves(layout)
                                         for layout in settings.layouts)]
        _time_rounds(index, timed, settings, busy, layer)
    finally:
        for worker in workers:
            worker.close()
    return layer


def _ready(workers, layer):
    ready = []
    for worker in workers:
        name = worker.contender.name
        try:
            kind, value = worker.ready()
        except WorkerError as error:
            layer["failures"][name] = str(error)
            continue
        if kind == "unavailable":
            layer["unavailable"][name] = value
        else:
            layer["libraries"][name] = value
            ready.append(worker)
    return ready


def _results(ready, layer):
    results = {}
    for worker in ready:
        name = worker.contender.name
        try:
            answer = worker.request("check")
        except WorkerError as error:
            layer["failures"][name] = str(error)
            continue
        results[name] = answer["results"]
        if answer["peak_bytes"] is not None:
            layer["peak_bytes"][name] = answer["peak_bytes"]
    return results


def _check(layout, contenders, results, result_bounds, failures):
    """cyconv in `layout` against every other contender of that layout that has results:
    {"ok", "contenders" (the names in this layout's rows), "comparisons"}. No comparisons (cyconv
    alone): ok, but nothing was checked."""
    serving = [c.name for c in contenders if c.serves(layout)]
    cyconv = f"cyconv {layout}"
    comparisons = {name: check.compare_results(results[cyconv], results[name], result_bounds)
                   for name in serving if name != cyconv and results.get(name) is not None and cyconv in results}
    ok = (cyconv in results and not any(name in failures for name in serving)
          and all(c["ok"] for each in comparisons.values() for c in each.values()))
    return {"ok": ok, "contenders": serving, "comparisons": comparisons}


def _time_rounds(index, workers, settings, busy, layer):
    units = [(w, mode, condition) for mode in MODES for w in workers for condition in settings.conditions]
    times = layer["times"]
    for w, mode, condition in units:
        layer["contenders"][w.contender.name] = {"library": w.contender.library, "layout": w.contender.layout}
        times.setdefault(w.contender.name, {}).setdefault(mode, {})[condition] = []
    for r in range(settings.rounds):
        log(f"layer {index}: round {r + 1}/{settings.rounds} ({len(units)} blocks)")
        shift = r % len(units) if units else 0
        for w, mode, condition in units[shift:] + units[:shift]:
            competing = busy.competing() if condition == "contended" else contextlib.nullcontext()
            try:
                with competing:
                    block = w.request("block", mode, settings.plan)
            except WorkerError as error:  # the layer's times are incomplete: none of its rows is reported
                layer["failures"][w.contender.name] = layer["timing_error"] = str(error)
                return
            times[w.contender.name][mode][condition].append(block)
