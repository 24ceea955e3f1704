"""Artifacts of a run: the session's whole audit log saved to a file, counts for the terminal summary, a
self-contained HTML report with each test's requests and timeline, and the same as static HTML for
pytest-html's extras. No pytest here."""

from __future__ import annotations

import collections
import copy
import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from .events import AuditEvent
from .folding import _ranks, fold, group_by_actor
from .private_files import write_private

__all__ = ["build_html", "counts", "extra_html", "redact_secrets", "save_log", "script_safe_json", "shown_test",
           "timeline_svg"]  # fmt: skip

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
    return write_private(path, data)


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


def shown_test(test: Mapping[str, Any], *, show_secrets: bool = False) -> dict[str, Any]:
    """What the report shows of one test (a record: ``nodeid``, ``outcome``, ``events`` as the API server
    wrote them, ``identity`` its kubectl's user, ``failure`` the failed assert's FailedQuery fields): one row
    per request, in time order, ``t`` seconds after the test's first request; its actors, own first; the
    rows the failed assert names marked 1, 2, ... in its order."""
    events = [AuditEvent.from_json(raw) for raw in test["events"]]
    requests = fold(events)
    own = test.get("identity") or None
    failure = test.get("failure") or {}
    rank = _ranks(failure.get("audit_ids", ()))
    start = min((r.received for r in requests if r.received), default=None)

    def offset(ts: datetime | None) -> float:
        return round((ts - start).total_seconds(), 6) if start and ts else 0.0

    rows: list[dict[str, Any]] = []
    ends: list[float] = []
    for r in requests:
        e = r.event
        shown = e.raw if show_secrets else redact_secrets(e.raw)
        rows.append({
            "t": offset(r.received), "end": offset(e.stage_timestamp or r.received),
            "time": r.received.isoformat() if r.received else "", "verb": e.verb,
            "resource": e.resource + (f"/{e.subresource}" if e.subresource else "") if e.is_resource else e.path,
            "namespace": e.namespace, "name": e.name, "user": r.actor, "code": e.code, "stages": list(r.stages),
            "level": e.level, "request": shown.get("requestObject"), "response": shown.get("responseObject"),
            "mark": rank.get(r.audit_id),
        })  # fmt: skip
        ends.append(rows[-1]["end"])
    actors = [{"user": a.user, "own": a.own, "count": len(a.requests), "errors": a.errors}
              for a in group_by_actor(requests, own)]  # fmt: skip
    return {
        "test": test["nodeid"], "outcome": test.get("outcome", ""), "identity": own, "events": len(events),
        "failure": {"assertion": failure["assertion"], "query": failure["query"]} if failure else None,
        "span": max(ends, default=0.0), "actors": actors, "requests": rows,
    }  # fmt: skip


def build_html(tests: Sequence[Mapping[str, Any]], *, title: str, show_secrets: bool = False) -> str:
    """One page, no external files: per test, a timeline with a lane per actor, then its requests (the
    test's own identity first, every other actor folded under one line that opens on click), a filter box,
    and each request's bodies behind a click."""
    payload = [shown_test(test, show_secrets=show_secrets) for test in tests]
    values = {"@TITLE@": html.escape(title), "@DATA@": script_safe_json(payload)}
    page = resources.files(__package__).joinpath("report.html").read_text()
    return _PLACEHOLDER.sub(lambda m: values[m.group()], page)  # one pass: a title never receives the data


# The static extra (pytest-html inserts it as markup, and scripts in it never run): inline styles only, since
# the host page's stylesheet knows none of our classes; every string from the events escaped.
_LANE, _LABEL, _PLOT = 16, 300, 600
_OWN, _OTHER, _CLIENT_ERROR, _SERVER_ERROR = "#1f6feb", "#8c959f", "#d97706", "#cf222e"


def _colour(code: Any, own: bool) -> str:
    if isinstance(code, int) and code >= 500:
        return _SERVER_ERROR
    if isinstance(code, int) and code >= 400:
        return _CLIENT_ERROR
    return _OWN if own else _OTHER


def timeline_svg(test: Mapping[str, Any]) -> str:
    """A static SVG timeline of a shown_test: one lane per actor, a mark per request (4xx/5xx coloured,
    the failed assert's events ringed), the request's summary as the mark's tooltip."""
    e = html.escape
    actors = test["actors"]
    lane = {a["user"]: i for i, a in enumerate(actors)}
    own = {a["user"] for a in actors if a["own"]}
    span = test["span"] or 1.0
    height = _LANE * max(len(actors), 1) + 18
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_LABEL + _PLOT + 10}" height="{height}" '
           f'role="img" aria-label="audit timeline" class="kind-audit-timeline" '
           f'style="font:11px ui-monospace,monospace;background:#fff">']  # fmt: skip
    for a, i in ((a, lane[a["user"]]) for a in actors):
        y = i * _LANE
        out.append(f'<text x="2" y="{y + 12}" fill="{"#000" if a["own"] else "#555"}">'
                   f"{e(_clip(a['user'], 40))} ({a['count']})</text>")  # fmt: skip
        out.append(f'<line x1="{_LABEL}" x2="{_LABEL + _PLOT}" y1="{y + 8}" y2="{y + 8}" stroke="#eee"/>')
    for n, r in enumerate(test["requests"]):
        y = lane[r["user"]] * _LANE
        x = _LABEL + _PLOT * r["t"] / span
        what = f"+{r['t']:.3f}s {r['verb']} {r['resource']} {_where(r)} code={r['code']}"
        out.append(f'<rect x="{x:.1f}" y="{y + 2}" width="3" height="12" fill="{_colour(r["code"], r["user"] in own)}" '
                   f'data-request="{n}"><title>{e(what)}</title></rect>')  # fmt: skip
        if r["mark"]:
            out.append(f'<circle cx="{x + 1.5:.1f}" cy="{y + 8}" r="7" fill="none" stroke="#000">'
                       f"<title>{e(str(r['mark']))}. named by the failed assert</title></circle>")  # fmt: skip
    axis = _LANE * max(len(actors), 1) + 12
    out.append(f'<text x="{_LABEL}" y="{axis}" fill="#555">0s</text>')
    out.append(f'<text x="{_LABEL + _PLOT}" y="{axis}" fill="#555" text-anchor="end">{test["span"]:.3f}s</text>')
    out.append("</svg>")
    return "".join(out)


def extra_html(test: Mapping[str, Any]) -> str:
    """A shown_test as static HTML for pytest-html's extras: the timeline, the failed assert's query, the
    test's own requests one row each and every other actor in a <details> that opens on click."""
    e = html.escape
    counted = f"{len(test['requests'])} requests ({test['events']} events) in this test"
    parts = [
        '<div class="kind-audit" style="font:12px ui-monospace,monospace">',
        f"<p><b>kind-audit</b>: {counted}</p>",
    ]
    if test["failure"]:
        parts.append(f'<p style="color:{_SERVER_ERROR}">{e(test["failure"]["assertion"])} failed: '
                     f"{e(test['failure']['query'])} (its events marked &lt;- n)</p>")  # fmt: skip
    parts.append(timeline_svg(test))
    by_user: dict[str, list[Mapping[str, Any]]] = collections.defaultdict(list)
    for r in test["requests"]:
        by_user[r["user"]].append(r)
    unfolded = test["identity"] is None
    for a in test["actors"]:
        table = _static_table(by_user[a["user"]])
        if a["own"] or unfolded:
            parts.append(table)
        else:
            errors = f", {a['errors']} with 4xx/5xx" if a["errors"] else ""
            plural = "s" if a["count"] != 1 else ""
            parts.append(f"<details><summary>{a['count']} request{plural} by {e(a['user'])}{errors}</summary>"
                         f"{table}</details>")  # fmt: skip
    parts.append("</div>")
    return "".join(parts)


def _static_table(rows: Iterable[Mapping[str, Any]]) -> str:
    e = html.escape
    out = ['<table style="border-collapse:collapse">']
    for r in rows:
        style = f' style="color:{_colour(r["code"], True)}"' if isinstance(r["code"], int) and r["code"] >= 400 else ""
        mark = f"&lt;- {r['mark']}" if r["mark"] else ""
        cells = [f"+{r['t']:.3f}", r["verb"], r["resource"], _where(r), r["user"], str(r["code"]), r["stages"][-1]]
        out.append(f"<tr{style}>" + "".join(f'<td style="padding:0 .6em">{e(c)}</td>' for c in cells)
                   + f"<td><b>{mark}</b></td></tr>")  # fmt: skip
    out.append("</table>")
    return "".join(out)


def _where(row: Mapping[str, Any]) -> str:
    return f"{row['namespace']}/{row['name']}" if row["namespace"] else str(row["name"])


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"
