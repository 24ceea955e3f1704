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
from _data import small_lines  # noqa: E402

from pytest_kind_audit import events  # noqa: E402


def best_of(fn: Callable[[], Any], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    lines = small_lines(n)
    size = statistics.mean(len(line) for line in lines)
    stdlib = json.loads

    def bare() -> None:
        for line in lines:
            stdlib(line)

    def typed_stdlib() -> None:
        events._loads = stdlib
        events.parse_lines(lines)

    base = best_of(bare)
    results = {"bare json.loads loop (baseline)": base, "typed, standard library json": best_of(typed_stdlib)}
    try:
        import orjson

        def typed_fast() -> None:
            events._loads = orjson.loads
            events.parse_lines(lines)

        results["typed, orjson"] = best_of(typed_fast)
    except ImportError:
        print("orjson not installed: pip install 'pytest-kind-audit[fast]'")
    print(f"{n} real small events, mean {size:.0f} bytes, best of 5, python {sys.version.split()[0]}")
    print(f"{'variant':36} {'events/s':>12} {'speed vs baseline':>18}")
    for name, seconds in results.items():
        print(f"{name:36} {n / seconds:12,.0f} {base / seconds:17.2f}x")


if __name__ == "__main__":
    main()
