"""Turn a saved session log (record_workload.py) into bench/data/kind-v1-<level>.jsonl.gz.

Every line stays byte for byte as kube-apiserver wrote it, except credentials the cluster made by itself, which
are overwritten with placeholders of the same length (so sizes and decoding work stay as recorded):

* service-account JWTs (TokenRequest responses at RequestResponse);
* Secret values outside the workload's namespaces (kind's bootstrap token in kube-system).

The workload's own Secrets hold throwaway values made by record_workload.py and stay as they are.

Run: python bench/data/compact.py LEVEL SAVED_LOG
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from record_workload import NAMESPACES

HERE = Path(__file__).parent
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def foreign_secret_values(event: dict[str, Any]) -> Iterator[str]:
    """The ``data``/``stringData`` values of the Secrets in an event's bodies that are not the workload's."""
    ref = event.get("objectRef") or {}
    if ref.get("resource") != "secrets":
        return
    for body in (event.get("requestObject"), event.get("responseObject")):
        if not isinstance(body, dict):
            continue
        for obj in body["items"] if isinstance(body.get("items"), list) else [body]:
            namespace = (obj.get("metadata") or {}).get("namespace") or ref.get("namespace", "")
            if namespace in NAMESPACES:
                continue
            for key in ("data", "stringData"):
                yield from (v for v in (obj.get(key) or {}).values() if isinstance(v, str) and v)


def placeholder(length: int) -> bytes:
    return (b"REDACTED" + b"A" * length)[:length]


def compact(level: str, log: Path) -> Path:
    lines = [line for line in log.read_bytes().splitlines() if line.strip()]
    foreign: set[bytes] = set()
    for line in lines:
        event = json.loads(line)
        assert event["apiVersion"] == "audit.k8s.io/v1", line[:200]
        assert event["level"] == level, line[:200]
        foreign.update(value.encode() for value in foreign_secret_values(event))
    out: list[bytes] = []
    for line in lines:
        line = JWT.sub(lambda m: placeholder(len(m.group())), line)
        for value in foreign:
            line = line.replace(b'"' + value + b'"', b'"' + placeholder(len(value)) + b'"')
        json.loads(line)  # still valid JSON
        out.append(line)
    data = b"\n".join(out) + b"\n"
    assert not JWT.search(data)
    assert not any(b'"' + value + b'"' in data for value in foreign)
    target = HERE / f"kind-v1-{level.lower()}.jsonl.gz"
    target.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    print(f"{target}: {len(out)} events, {len(data):,} bytes, {target.stat().st_size:,} gzipped, "
          f"{len(foreign)} foreign Secret values and every JWT redacted")  # fmt: skip
    return target


if __name__ == "__main__":
    compact(sys.argv[1], Path(sys.argv[2]))
