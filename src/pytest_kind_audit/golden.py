"""Golden audit trails: the requests an identity made, normalized so that a trail recorded once can be
compared with every later run (with syrupy: ``assert audit_log.trail() == snapshot``).

Controller traffic depends on timing; the normalization keeps what a change in code would change and drops
what a change in timing would:

1. Only the chosen users' requests (default: the test's own identity); non-resource requests (discovery:
   ``/api``, ``/apis``, ``/openapi/...``, ``/version``; health probes) are left out.
2. One step per request (audit ID), from its last stage: ``ResponseComplete`` or ``Panic``, or
   ``ResponseStarted`` for a watch or another long-running request still open. A step is verb, resource
   (``deployments.apps`` outside the core group, ``pods/log`` for a subresource), namespace, name and code.
3. Watches: a watch on the same resource, namespace and name counts once, however often it was
   re-established, at its first place.
4. Retries after ``409 Conflict``: a 409 step followed later by the same request (verb, resource,
   namespace, name) with another code is dropped; a 409 that was never followed stays.
5. Identical repeats: a step equal to the one before it is dropped (a controller's poll loop, a retry).
6. Made-up names: a ``generateName`` suffix reads ``-*`` (``web-c77cfb848-*``), an Event's name
   ``<object>.*``. Namespaces named in ``namespaces`` (the test's ``audit_namespace`` by default) read as their
   placeholder (``<namespace>``), so random names do not break the comparison.
7. ``ordered=False``: the distinct steps, sorted, for traffic whose order is not the point (several
   workers, several reconciles).

This module is pytest-free; syrupy compares the ``Trail`` as the plain text it is.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .query import AuditQuery

if TYPE_CHECKING:
    from .events import AuditEvent
    from .log import AuditWindow

__all__ = ["NAMESPACE_PLACEHOLDER", "Trail", "TrailStep", "audit_trail", "window_trail"]

NAMESPACE_PLACEHOLDER = "<namespace>"
_FINAL = ("ResponseComplete", "Panic")
# Requests the API server answers by streaming: their ResponseComplete comes when they end, maybe never
# during the test, so ResponseStarted is as final as they get.
_LONG_RUNNING_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward", "proxy"})
_CONFLICT = 409
# Names the API server or a recorder made up: generateName's random 5-character suffix (its alphabet has no
# vowels, so real words rarely match), and an Event's "<object>.<hex timestamp>".
_generated = re.compile(r"^(.*-)[bcdfghjklmnpqrstvwxz2456789]{5}$|^(.*\.)[0-9a-f]{16}$")
# How often trail() looks again for the answers of requests seen only as received.
_SETTLE_POLL = 0.01


@dataclass(frozen=True, order=True)
class TrailStep:
    """One request of a trail."""

    verb: str
    resource: str  # "configmaps", "deployments.apps", "pods/log"
    namespace: str
    name: str
    code: int | None  # None: no answer was logged

    def line(self) -> str:
        """``create configmaps <namespace>/cfg 201``; ``ns/`` for a namespaced collection."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        code = "-" if self.code is None else str(self.code)
        return " ".join(p for p in (self.verb, self.resource, where, code) if p)

    def request(self) -> tuple[str, str, str, str]:
        """The step without its answer: what a retry repeats."""
        return self.verb, self.resource, self.namespace, self.name


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class Trail(str):
    """A normalized trail: its text is one step per line (what syrupy stores and diffs, and what a plain
    ``==`` compares); ``steps`` holds the records."""

    steps: tuple[TrailStep, ...]

    def __new__(cls, steps: Iterable[TrailStep]) -> Trail:
        steps = tuple(steps)
        trail = super().__new__(cls, "\n".join(s.line() for s in steps))
        trail.steps = steps
        return trail

    def lines(self) -> list[str]:
        return [s.line() for s in self.steps]

    def __getnewargs__(self) -> tuple[tuple[TrailStep, ...]]:  # type: ignore[override]
        # copy, deepcopy and pickle call __new__ with these: the steps, not the text
        return (self.steps,)


def audit_trail(
    events: Iterable[AuditEvent],
    *,
    user: Any = None,
    namespaces: Mapping[str, str] | None = None,
    ordered: bool = True,
) -> Trail:
    """The normalized trail of ``events`` (see the module's documentation for the rules).

    ``user`` selects whose requests count, as the ``user`` filter of ``assert_audited`` does (a name, an
    iterable of names, a regex or a callable; None: everyone). ``namespaces`` maps real namespace names to
    the placeholders the trail shows.
    """
    query = AuditQuery(user=user, stage=None)
    last: dict[str, AuditEvent] = {}  # audit ID -> the request's last logged stage; insertion = first seen
    for event in events:
        if event.object_ref is None or not query.matches(event):
            continue
        key = event.audit_id or str(id(event))
        seen = last.get(key)
        if seen is None or _rank(event) >= _rank(seen):
            last[key] = event
    # sorted() is stable: log order breaks ties; an event without timestamps keeps its place after the others
    received = sorted(last.values(), key=lambda e: (e.received_at is None, e.received_at or _EPOCH))
    steps = _collapse([_step(e, namespaces or {}) for e in received])
    if not ordered:
        steps = sorted(set(steps), key=_sort_key)
    return Trail(steps)


def window_trail(
    window: AuditWindow,
    *,
    user: Any = None,
    namespaces: Mapping[str, str] | None = None,
    ordered: bool = True,
    timeout: float | None = None,
) -> Trail:
    """The trail of a window's events: by default the window's own identity's requests, its namespace as
    ``<namespace>``, and from the start of the test function on when the plugin recorded it (so fixture
    setup is left out).

    First waits (up to ``timeout``, default the window's) until every selected request the log shows as
    received has its answer logged too: the API server logs a request as received before it answers, so a
    client's last request is never missing, only perhaps unanswered for a moment. What is still
    unanswered then shows code ``-``.
    """
    if user is None and window.identity is not None:
        user = window.identity[0]
    if namespaces is None:
        namespaces = {window.namespace: NAMESPACE_PLACEHOLDER} if window.namespace else {}
    wait = window.timeout if timeout is None else timeout
    deadline = time.monotonic() + wait
    while True:
        start = window.body_start
        events = [e for e in window.all() if start is None or (e.received_at or start) >= start]
        trail = audit_trail(events, user=user, namespaces=namespaces, ordered=ordered)
        if all(s.code is not None for s in trail.steps) or time.monotonic() >= deadline:
            return trail
        time.sleep(_SETTLE_POLL)


def _rank(event: AuditEvent) -> int:
    """Later stages win; RequestReceived loses to everything."""
    return {"RequestReceived": 0, "ResponseStarted": 1, "ResponseComplete": 2, "Panic": 2}.get(event.stage, 0)


def _step(event: AuditEvent, namespaces: Mapping[str, str]) -> TrailStep:
    resource = event.resource + (f".{event.api_group}" if event.api_group else "")
    if event.subresource:
        resource += f"/{event.subresource}"
    name, namespace = _made_up(event.name), namespaces.get(event.namespace, event.namespace)
    if event.resource == "namespaces":  # its own requests carry it as their namespace too: show it once
        name, namespace = namespaces.get(event.name, name), ""
    answered = event.stage in _FINAL or (event.stage == "ResponseStarted" and _long_running(event))
    return TrailStep(event.verb, resource, namespace, name, event.code if answered else None)


def _made_up(name: str) -> str:
    match = _generated.match(name)
    return (match.group(1) or match.group(2)) + "*" if match else name


def _long_running(event: AuditEvent) -> bool:
    return event.verb == "watch" or event.subresource in _LONG_RUNNING_SUBRESOURCES


def _collapse(steps: list[TrailStep]) -> list[TrailStep]:
    # Watches: one per target, at its first place (a re-established watch is the same watch).
    watched: set[tuple[str, str, str, str]] = set()
    kept: list[TrailStep] = []
    for step in steps:
        if step.verb == "watch":
            if step.request() in watched:
                continue
            watched.add(step.request())
        kept.append(step)
    # Conflicts: a 409 whose request is made again later (the client retried) is not part of the story.
    out: list[TrailStep] = []
    for i, step in enumerate(kept):
        if step.code == _CONFLICT and any(
            later.request() == step.request() and later.code != _CONFLICT for later in kept[i + 1 :]
        ):
            continue
        out.append(step)
    # Identical repeats in a row, also once the conflicts between them are gone.
    return [s for i, s in enumerate(out) if i == 0 or s != out[i - 1]]


def _sort_key(step: TrailStep) -> tuple[str, str, str, str, int]:
    """Grouped by what is requested: resource, namespace, name, then verb and code."""
    return step.resource, step.namespace, step.name, step.verb, -1 if step.code is None else step.code
