"""Artifacts of a run: the session's whole audit log saved to a file, counts for the terminal summary, and
a self-contained HTML report with each test's audit timeline. No pytest here."""

from __future__ import annotations

import collections
import copy
import html
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from .events import AuditEvent

__all__ = ["build_html", "counts", "redact_secrets", "save_log", "script_safe_json"]

REDACTED = "<redacted>"

# Inside a <script> element the HTML parser looks for "</script", and "<!--" switches it into a state where
# a later "<script" makes the next "</script>" not count; ">" and "&" matter next to those, and U+2028 and
# U+2029 end a line for JavaScript parsers that predate ES2019. JSON strings may spell any character as
# \uXXXX, so each of these becomes its escape: the text then holds none of them, and decodes the same.
_SCRIPT_SAFE = str.maketrans({c: f"\\u{ord(c):04x}" for c in "<>&\u2028\u2029"})
_PLACEHOLDER = re.compile("@TITLE@|@DATA@")


def script_safe_json(value: Any) -> str:
    """JSON for the inside of a ``<script>`` element: it cannot end the element, open a comment in it, or
    hold a line terminator, whatever strings the value contains."""
    return json.dumps(value).translate(_SCRIPT_SAFE)


def save_log(data: bytes, path: Path) -> Path:
    """Write the log with mode 0600 from the first byte: at RequestResponse it can hold secrets."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT
    return path


def counts(events: Iterable[AuditEvent], top: int = 8) -> list[str]:
    """Summary lines: events by verb, by resource and by code (ResponseComplete only: one per request)."""
    by_verb: collections.Counter[str] = collections.Counter()
    by_resource: collections.Counter[str] = collections.Counter()
    by_code: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.stage != "ResponseComplete":
            continue
        by_verb[e.verb] += 1
        by_resource[e.resource or "(non-resource)"] += 1
        by_code[str(e.code)] += 1

    def line(title: str, counter: collections.Counter[str]) -> str:
        shown = ", ".join(f"{k} {n}" for k, n in counter.most_common(top))
        more = f", ... ({len(counter) - top} more)" if len(counter) > top else ""
        return f"  by {title}: {shown}{more}"

    return [line("verb", by_verb), line("resource", by_resource), line("code", by_code)]


def redact_secrets(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an event with the values of Secret ``data``/``stringData`` replaced, in request and response
    bodies (single objects and lists)."""
    event = dict(raw)
    ref = event.get("objectRef") or {}
    if ref.get("resource") != "secrets":
        return event
    for key in ("requestObject", "responseObject"):
        body = event.get(key)
        if isinstance(body, dict):
            body = copy.deepcopy(body)
            for obj in [body, *(body.get("items") or [])]:
                if isinstance(obj, dict):
                    for field in ("data", "stringData"):
                        if isinstance(obj.get(field), dict):
                            obj[field] = dict.fromkeys(obj[field], REDACTED)
            event[key] = body
    return event


def build_html(tests: Sequence[Mapping[str, Any]], *, title: str, show_secrets: bool = False) -> str:
    """One page, no external files: per test, its audit events in time order, a filter box, and each
    event's request and response bodies behind a click."""
    payload = []
    for test in tests:
        events = [AuditEvent.from_json(raw) for raw in test["events"]]
        start = min((e.request_received_timestamp for e in events if e.request_received_timestamp), default=None)
        rows = []
        for e, raw in zip(events, test["events"], strict=True):
            offset = (
                (e.request_received_timestamp - start).total_seconds() if start and e.request_received_timestamp else 0
            )
            shown = raw if show_secrets else redact_secrets(raw)
            rows.append({
                "t": round(offset, 6), "time": e.timestamp.isoformat() if e.timestamp else "", "verb": e.verb,
                "resource": e.resource + (f"/{e.subresource}" if e.subresource else "") if e.is_resource else e.path,
                "namespace": e.namespace, "name": e.name, "user": e.user.username, "code": e.code, "stage": e.stage,
                "level": e.level, "request": shown.get("requestObject"), "response": shown.get("responseObject"),
            })  # fmt: skip
        payload.append({"test": test["nodeid"], "outcome": test.get("outcome", ""), "events": rows})
    values = {"@TITLE@": html.escape(title), "@DATA@": script_safe_json(payload)}
    page = resources.files(__package__).joinpath("report.html").read_text()
    return _PLACEHOLDER.sub(lambda m: values[m.group()], page)  # one pass: a title never receives the data
