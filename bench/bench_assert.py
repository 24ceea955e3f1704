"""Cost of an assert in a long session: it must grow with the events new since the last poll, not with
the session's size. For sessions of 10k, 100k and 1M events, a test opens its window, 200 new events
arrive (its own among them), and assert_audited runs; the baseline in the same run is a query over the
whole session. Medians of 5 such tests per size. Run: python bench/bench_assert.py [MAX_EVENTS]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import tracemalloc
from datetime import datetime, timedelta, timezone

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from _data import small_lines

from pytest_kind_audit import AuditLog

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
NEW = 200
ROUNDS = 5


class GrowingSource:
    """An in-memory log the benchmark appends to, read the way the real source is (only new bytes)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.offset = 0

    def read_new(self) -> bytes:
        data = bytes(self.buf[self.offset :])
        self.offset += len(data)
        return data


def stamped(lines: list[bytes], first: datetime) -> bytes:
    out = []
    for i, line in enumerate(lines):
        event = json.loads(line)
        ts = (first + timedelta(microseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event["requestReceivedTimestamp"] = event["stageTimestamp"] = ts
        out.append(json.dumps(event).encode())
    return b"\n".join(out) + b"\n"


def main() -> None:
    top = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    sizes = [n for n in (10_000, 100_000, 1_000_000) if n <= top]
    template = stamped(small_lines(10_000), START)
    own = json.loads(template.splitlines()[0])
    own.update(verb="create", objectRef={"resource": "namespaces", "name": "bench-own"})
    header = ("session events", "assert (new events only)", "full-session query", "ratio", "log memory")
    print("{:>15} {:>25} {:>19} {:>7} {:>11}".format(*header))
    for n in sizes:
        source = GrowingSource()
        log = AuditLog(source)
        tracemalloc.start()
        for _ in range(n // 10_000):
            source.buf += template
            log.poll()
        memory = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        asserts, fulls = [], []
        for test in range(ROUNDS):  # one test after another, each with its own window and requests
            later = START + timedelta(days=1 + test)
            window = log.window(later)
            new = stamped(small_lines(NEW - 1), later + timedelta(seconds=1))
            own["objectRef"]["name"] = f"bench-own-{test}"
            own["requestReceivedTimestamp"] = own["stageTimestamp"] = (later + timedelta(seconds=2)).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )
            source.buf += new + json.dumps(own).encode() + b"\n"
            t0 = time.perf_counter()
            window.assert_audited(verb="create", resource="namespaces", name=f"bench-own-{test}", count=1, timeout=0)
            asserts.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            found = log.events(verb="create", resource="namespaces", name=f"bench-own-{test}")
            fulls.append(time.perf_counter() - t0)
            assert len(found) == 1
        windowed, full = statistics.median(asserts), statistics.median(fulls)
        print(f"{len(log):>15,} {windowed * 1e3:>22.2f} ms {full * 1e3:>16.1f} ms {full / windowed:>6.0f}x"
              f" {memory / 2**20:>8.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
