"""Benchmark inputs: real events, from tests/data/audit-logs and from our own kind clusters (bench/data)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

LOGS = Path(__file__).parents[1] / "tests" / "data" / "audit-logs"
KIND_DATA = Path(__file__).parent / "data"
#: The levels recorded in bench/data/kind-v1-<level>.jsonl.gz, lowest first.
KIND_LEVELS = ("Metadata", "Request", "RequestResponse")


def small_lines(n: int) -> list[bytes]:
    """``n`` real, small (Metadata/Request level, no bodies) audit.k8s.io/v1 lines, cycled."""
    pool = []
    for name in ("sysdiglabs-aks-audit-log-eventhub-sample.jsonl", "liggitt-audit2rbac-demo-2017-v1beta1.jsonl"):
        for line in (LOGS / name).read_bytes().splitlines():
            if line.strip() and "requestObject" not in json.loads(line):
                pool.append(line)
    return [pool[i % len(pool)] for i in range(n)]


def kind_pool(level: str) -> list[bytes]:
    """Every line of the audit.k8s.io/v1 log recorded at ``level`` on our own kind cluster (bench/data)."""
    data = gzip.decompress((KIND_DATA / f"kind-v1-{level.lower()}.jsonl.gz").read_bytes())
    return [line for line in data.splitlines() if line.strip()]


def kind_lines(level: str, n: int) -> list[bytes]:
    """``n`` lines of the kind log recorded at ``level``, in their order, cycled (the same bytes objects)."""
    pool = kind_pool(level)
    return [pool[i % len(pool)] for i in range(n)]
