"""A test's audit events as the reports show them: one row per request (its stages folded into it, the final
code shown), the requests of the test's own identity first and every other actor's under one line. No pytest
here: the terminal section, the HTML report and the pytest-html extra all build on this."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .events import AuditEvent

__all__ = ["Actor", "FoldedRequest", "fold", "group_by_actor", "section"]

# Stages in the order the API server writes them; an unknown stage sorts last.
_STAGE_ORDER = {"RequestReceived": 0, "ResponseStarted": 1, "ResponseComplete": 2, "Panic": 3}


@dataclass(frozen=True)
class FoldedRequest:
    """One API request: the audit events it was logged as (one per stage), folded into one row."""

    #: Its last stage: the final code and, from Request level on, the bodies.
    event: AuditEvent
    stages: tuple[str, ...]
    #: When the API server received it (for v1beta1 lines, when it logged it).
    received: datetime | None

    @property
    def audit_id(self) -> str:
        return self.event.audit_id

    @property
    def actor(self) -> str:
        return self.event.username or "<unauthenticated>"

    @property
    def code(self) -> int | None:
        return self.event.code

    @property
    def finished(self) -> bool:
        """The API server answered (a watch still open, or a request cut off by the window, has not)."""
        return self.event.stage in ("ResponseComplete", "Panic")

    def summary(self) -> str:
        line = self.event.summary()
        return line if self.finished else f"{line}  ({self.event.stage}, no response yet)"


@dataclass(frozen=True)
class Actor:
    """The requests of one user, in time order; ``own`` when it is the identity the test's kubectl uses."""

    user: str
    own: bool
    requests: tuple[FoldedRequest, ...]

    @property
    def errors(self) -> int:
        return sum(1 for r in self.requests if (r.code or 0) >= 400)

    def headline(self) -> str:
        """The one line a folded actor is shown as: "12 requests by system:kube-controller-manager"."""
        n = len(self.requests)
        failed = f", {self.errors} with 4xx/5xx" if self.errors else ""
        return f"{n} request{'s' if n != 1 else ''} by {self.user}{failed}"


def fold(events: Iterable[AuditEvent]) -> list[FoldedRequest]:
    """One FoldedRequest per audit ID, in the order the requests were received. An event without an ID (a
    hand-written line) is a request of its own, and so is each user's under a reused ID (relabelled logs):
    every event is shown once."""
    by_id: dict[tuple[str, str], list[AuditEvent]] = collections.defaultdict(list)
    for i, e in enumerate(events):
        by_id[e.audit_id or f"#{i}", e.username].append(e)
    out = []
    for stages in by_id.values():
        stages.sort(key=lambda e: _STAGE_ORDER.get(e.stage, len(_STAGE_ORDER)))
        received = next((e.request_received_timestamp for e in stages if e.request_received_timestamp), None)
        out.append(FoldedRequest(stages[-1], tuple(e.stage for e in stages), received or stages[-1].timestamp))
    # Stable: requests with no timestamp keep their order, after the timed ones.
    out.sort(key=lambda r: (r.received is None, r.received.timestamp() if r.received else 0.0))
    return out


def group_by_actor(requests: Sequence[FoldedRequest], own: str | None) -> list[Actor]:
    """Actors, the test's own identity first, then by number of requests (most first) and name. With no
    known identity, no actor is the test's own."""
    by_user: dict[str, list[FoldedRequest]] = collections.defaultdict(list)
    for r in requests:
        by_user[r.actor].append(r)
    actors = [Actor(user, user == own, tuple(rs)) for user, rs in by_user.items()]
    actors.sort(key=lambda a: (not a.own, -len(a.requests), a.user))
    return actors


def section(
    events: Sequence[AuditEvent],
    own: str | None,
    *,
    verbosity: int = 0,
    marked: Sequence[str] = (),
    query: str = "",
    redact: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> tuple[str, str]:
    """The title and text of a failed test's terminal section. The test's own requests one line each;
    every other actor one line ("12 requests by system:kube-controller-manager"), its requests listed
    under it with -v; -vv: every event as the API server wrote it. ``marked`` are the audit IDs a failed
    assert named (``query``): their lines end with ``<- 1``, ``<- 2``, ... in the assert's order. ``redact``
    rewrites the raw events -vv shows (Secret data)."""
    requests = fold(events)
    title = f"kind-audit events ({len(requests)} requests, {len(events)} events in this test)"
    if verbosity >= 2:
        shown = (redact(e.raw) if redact else e.raw for e in events)
        return title, "\n".join(json.dumps(raw, sort_keys=False) for raw in shown) or "(none)"
    rank = _ranks(marked)
    actors = group_by_actor(requests, own)
    lines = []
    if query and rank:
        lines.append(f"<- n: the events the failed assert names, for {query}")

    def listing(rs: Iterable[FoldedRequest], indent: str) -> list[str]:
        return [indent + r.summary() + (f"  <- {rank[r.audit_id]}" if r.audit_id in rank else "") for r in rs]

    for actor in actors:
        if actor.own or own is None:
            lines += listing(actor.requests, "")
    others = [a for a in actors if not a.own] if own is not None else []
    if others and not any(a.own for a in actors):
        lines.append(f"(no requests by {own}, the test's identity)")
    for actor in others:
        hint = f"  ({_marks(actor, rank)})" if verbosity < 1 and _marks(actor, rank) else ""
        lines.append(actor.headline() + hint)
        if verbosity >= 1:
            lines += listing(actor.requests, "    ")
    if others and verbosity < 1:
        lines.append("(use -v to list the other actors' requests)")
    return title, "\n".join(lines) or "(none)"


def _ranks(audit_ids: Iterable[str]) -> dict[str, int]:
    """1, 2, ... in the failed assert's order; a request it names twice (two of its stages) keeps its first."""
    rank: dict[str, int] = {}
    for audit_id in audit_ids:
        if audit_id:  # an event without an ID names no request
            rank.setdefault(audit_id, len(rank) + 1)
    return rank


def _marks(actor: Actor, rank: Mapping[str, int]) -> str:
    """For a folded actor: which of the failed assert's events it holds ("holds <- 1, 3")."""
    held = sorted(rank[r.audit_id] for r in actor.requests if r.audit_id in rank)
    return "holds " + ", ".join(f"<- {n}" for n in held) if held else ""
