"""Typed events against a bare json.loads loop over the same lines, in the same run.

Target (issue #3): typed events with the standard library at >= 0.5x the bare loop's speed, and with the
optional fast decoder (orjson) at >= 1.0x. Run: python bench/bench_parse.py [N]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from _data import small_lines

from pytest_kind_audit import events


def best_of(variants: dict[str, Callable[[], Any]], repeat: int = 9) -> dict[str, float]:
    """Best time of each variant, interleaved so machine noise hits every variant alike."""
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(repeat):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    lines = small_lines(n)
    size = statistics.mean(len(line) for line in lines)
    stdlib = json.loads

    def bare() -> None:  # decode and drop: the strictest baseline
        for line in lines:
            stdlib(line)

    def bare_kept() -> None:  # decode and keep, as any parser must
        [stdlib(line) for line in lines]

    def typed_stdlib() -> None:
        events._loads = stdlib
        events.parse_lines(lines)

    variants: dict[str, Callable[[], Any]] = {
        "bare json.loads loop, results dropped": bare,
        "bare json.loads loop, results kept": bare_kept,
        "typed AuditEvents, stdlib json": typed_stdlib,
    }
    try:
        import orjson

        def typed_fast() -> None:
            events._loads = orjson.loads
            events.parse_lines(lines)

        variants["typed AuditEvents, orjson"] = typed_fast
    except ImportError:
        print("orjson not installed: pip install 'pytest-kind-audit[fast]'")
    results = best_of(variants)
    dropped, kept = results["bare json.loads loop, results dropped"], results["bare json.loads loop, results kept"]
    print(f"{n} real small events, mean {size:.0f} bytes, best of 9 interleaved, python {sys.version.split()[0]}")
    print(f"{'variant':40} {'events/s':>10} {'vs dropped':>11} {'vs kept':>8}")
    for name, seconds in results.items():
        print(f"{name:40} {n / seconds:10,.0f} {dropped / seconds:10.2f}x {kept / seconds:7.2f}x")


if __name__ == "__main__":
    main()
