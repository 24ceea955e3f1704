"""Typed events against a bare loop of the same JSON decoder over the same lines, like with like.

For each decoder (the standard library's json.loads, and orjson.loads when installed) and each audit level
recorded on our own kind cluster (bench/data/kind-v1-<level>.jsonl.gz, audit.k8s.io/v1, cycled to N events):

* bare:  ``[loads(line) for line in lines]``, the decoder alone, results kept (as any parser must keep them);
* typed: ``events.parse_lines(lines)`` with that same decoder, the plugin's hot path.

Parsed events build their nested objects (user aside) and timestamps on first read, so the typed parse leaves
work for later; "+reads" is that later work, measured too: the first read of every such field of every event
(``raw`` aside: decoding the line again is what a caller pays only for the raw form), in the same turns.

Both run with the same cyclic-GC state: the state parse_lines itself runs its decoder in (it turns the collector
off; the script probes this rather than assuming it). The variants take turns on the same 1000-line chunks (which
goes first alternates), each keeping every result until the repetition ends; results are freed outside the timed
regions. Times are this process's CPU time (time.process_time), which other processes on a shared machine stretch
much less than wall time. Reported: median events/s of each, and typed/bare = the
median over repetitions of (bare time / typed time) in the same repetition, i.e. the typed parse's speed as a
fraction of the bare loop's. Goal (issue #11): typed/bare >= 0.5 for every decoder and level. Also reported:
(typed+reads)/bare, the same with the first reads counted into the typed time.

Memory (tracemalloc, one pass per variant over one copy of each recorded log, its lines first copied into fresh
bytes objects as a reader hands them over; tracing all N events would take longer than the timing): "held" is
what the results keep alive per event once the input list is dropped (typed events keep their line's bytes,
``raw_line``, from which ``raw`` is decoded when read, so those count for typed), "peak" the most traced at any
moment, the input lines included, "held after reads" the typed events' held once the first reads are done.

Run: python bench/bench_parse.py [N] [--repeat R] [--json FILE]   (N events per input, default 100000)
"""

from __future__ import annotations

import argparse
import gc
import json
import operator
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _data import KIND_LEVELS, kind_lines, kind_pool

from pytest_kind_audit import events

Loads = Callable[[bytes], Any]
GOAL = 0.5
CHUNK = 1000  # lines per turn when interleaving the variants
#: The fields a parsed event builds on first read (raw aside), read once each after the typed parse.
first_reads = operator.attrgetter(
    "impersonated_user", "source_ips", "object_ref", "response_status", "request_received_timestamp",
    "stage_timestamp",
)  # fmt: skip


def available_decoders() -> dict[str, Loads]:
    found: dict[str, Loads] = {"json": json.loads}
    try:
        import orjson
    except ImportError:
        print("orjson not installed (pip install 'pytest-kind-audit[fast]'): stdlib json only")
    else:
        found["orjson"] = orjson.loads
    return found


def bare(loads: Loads, lines: list[bytes]) -> list[Any]:
    return [loads(line) for line in lines]


def typed(loads: Loads, lines: list[bytes]) -> list[Any]:
    events._loads = loads  # parse_lines decodes with the module's decoder
    return events.parse_lines(lines)


def parse_lines_gc_state(lines: list[bytes]) -> bool:
    """Whether parse_lines runs its decoder with the cyclic GC enabled, called with it enabled."""
    seen: list[bool] = []

    def probe(line: bytes) -> Any:
        seen.append(gc.isenabled())
        return json.loads(line)

    saved = events._loads
    gc.enable()
    try:
        events._loads = probe
        events.parse_lines(lines[:10])
    finally:
        events._loads = saved
    return all(seen)


def paired_run(loads: Loads, lines: list[bytes], rep: int) -> tuple[float, float, float]:
    """One repetition of both variants over all the lines, interleaved chunk by chunk so that a burst of load from
    other processes hits both alike; every result is kept to the end. CPU seconds of (bare, typed, the typed
    events' first reads)."""
    events._loads = loads  # set outside the timed regions
    clock = time.process_time
    seconds = {"bare": 0.0, "typed": 0.0, "reads": 0.0}
    kept: list[list[Any]] = []
    for i, start in enumerate(range(0, len(lines), CHUNK)):
        chunk = lines[start : start + CHUNK]
        for fn in (bare, typed) if (rep + i) % 2 == 0 else (typed, bare):
            t0 = clock()
            result = fn(loads, chunk)
            seconds[fn.__name__] += clock() - t0
            if fn is typed:
                t0 = clock()
                for event in result:
                    first_reads(event)
                seconds["reads"] += clock() - t0
            kept.append(result)
    del kept  # freed outside the timed regions
    return seconds["bare"], seconds["typed"], seconds["reads"]


def memory(fn: Callable[[Loads, list[bytes]], list[Any]], loads: Loads, lines: list[bytes]) -> tuple[float, ...]:
    """(held, peak, held once every lazy field was read) bytes per event, from the lines as read (fresh bytes
    objects) to the results alone; the last is the held for bare."""
    gc.collect()
    tracemalloc.start()
    chunk = [bytes(memoryview(line)) for line in lines]  # fresh objects, as read from a file
    result = fn(loads, chunk)
    peak = tracemalloc.get_traced_memory()[1]
    del chunk  # the reader drops its chunk; typed events keep their own line
    held = tracemalloc.get_traced_memory()[0]
    if fn is typed:
        for event in result:
            first_reads(event)
    read = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del result
    return held / len(lines), peak / len(lines), read / len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=100_000, help="events per input (default 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions (default 3)")
    parser.add_argument("--json", type=Path, help="also write the results to this file as JSON")
    args = parser.parse_args()
    n, repeat = args.n, args.repeat
    decoders = available_decoders()
    pools = {level: kind_pool(level) for level in KIND_LEVELS}
    inputs = {level: kind_lines(level, n) for level in KIND_LEVELS}
    cases = [(level, name) for level in KIND_LEVELS for name in decoders]
    gc_on = parse_lines_gc_state(inputs[KIND_LEVELS[0]])
    saved_loads, gc_was_on = events._loads, gc.isenabled()

    times: dict[tuple[str, str], dict[str, list[float]]] = {case: {"bare": [], "typed": [], "reads": []}
                                                            for case in cases}  # fmt: skip
    gc.collect()
    gc.enable() if gc_on else gc.disable()
    try:
        for rep in range(repeat):
            for level, name in cases:
                t_bare, t_typed, t_reads = paired_run(decoders[name], inputs[level], rep)
                times[level, name]["bare"].append(t_bare)
                times[level, name]["typed"].append(t_typed)
                times[level, name]["reads"].append(t_reads)
        mem = {(case, fn.__name__): memory(fn, decoders[case[1]], pools[case[0]]) for case in cases
               for fn in (bare, typed)}  # fmt: skip
    finally:
        events._loads = saved_loads
        gc.enable() if gc_was_on else gc.disable()

    version = ""
    if "orjson" in decoders:
        import orjson

        version = f", orjson {orjson.__version__}"
    print(f"$ python bench/bench_parse.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"python {sys.version.split()[0]}{version}; {n} events per input: bench/data/kind-v1-<level>.jsonl.gz cycled")
    print(f"cyclic GC {'on' if gc_on else 'off'} for both variants (the state parse_lines runs its decoder in); "
          f"{repeat} repetitions interleaved by 1000-line chunks, CPU time, medians; "
          "memory: tracemalloc over the recorded logs once")  # fmt: skip
    header = (f"{'level':15} {'decoder':7} {'lines':>5} {'B/line':>6} {'bare ev/s':>10} {'typed ev/s':>10} "
              f"{'typed/bare':>10} {'+reads/bare':>11}  {'held B/ev bare':>14} {'typed':>6} {'ratio':>5}  "
              f"{'peak B/ev bare':>14} {'typed':>6} {'ratio':>5}  {'held after reads':>16}")  # fmt: skip
    print(header)
    print("-" * len(header))
    rows = []
    for level, name in cases:
        pool = pools[level]
        t = times[level, name]
        ratio = statistics.median(b / ty for b, ty in zip(t["bare"], t["typed"], strict=True))
        with_reads = statistics.median(b / (ty + r) for b, ty, r in zip(t["bare"], t["typed"], t["reads"], strict=True))
        (held_b, peak_b, _), (held_t, peak_t, read_t) = mem[(level, name), "bare"], mem[(level, name), "typed"]
        row = {
            "level": level,
            "decoder": name,
            "distinct_lines": len(pool),
            "mean_line_bytes": statistics.mean(len(line) for line in pool),
            "bare_events_per_s": n / statistics.median(t["bare"]),
            "typed_events_per_s": n / statistics.median(t["typed"]),
            "typed_over_bare": ratio,
            "typed_with_first_reads_over_bare": with_reads,
            "held_bytes_per_event": {"bare": held_b, "typed": held_t, "typed_after_first_reads": read_t},
            "peak_bytes_per_event": {"bare": peak_b, "typed": peak_t},
        }
        rows.append(row)
        flag = "" if ratio >= GOAL else f"  below the {GOAL}x goal"
        print(f"{level:15} {name:7} {len(pool):5} {row['mean_line_bytes']:6.0f} {row['bare_events_per_s']:10,.0f} "
              f"{row['typed_events_per_s']:10,.0f} {ratio:9.2f}x {with_reads:10.2f}x  {held_b:14,.0f} {held_t:6,.0f} "
              f"{held_t / held_b:5.2f}  {peak_b:14,.0f} {peak_t:6,.0f} {peak_t / peak_b:5.2f}  "
              f"{read_t:16,.0f}{flag}")  # fmt: skip
    if args.json:
        info = {"n": n, "repeat": repeat, "gc_on": gc_on, "python": sys.version.split()[0]}
        args.json.write_text(json.dumps({**info, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
