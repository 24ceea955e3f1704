"""Benchmark inputs made from the real events in tests/data/audit-logs."""

from __future__ import annotations

import json
from pathlib import Path

LOGS = Path(__file__).parents[1] / "tests" / "data" / "audit-logs"


def small_lines(n: int) -> list[bytes]:
    """``n`` real, small (Metadata/Request level, no bodies) audit.k8s.io/v1 lines, cycled."""
    pool = []
    for name in ("sysdiglabs-aks-audit-log-eventhub-sample.jsonl", "liggitt-audit2rbac-demo-2017-v1beta1.jsonl"):
        for line in (LOGS / name).read_bytes().splitlines():
            if line.strip() and "requestObject" not in json.loads(line):
                pool.append(line)
    return [pool[i % len(pool)] for i in range(n)]
