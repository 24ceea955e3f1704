"""assert_audited / assert_not_audited, and failure messages that say what was expected, what was seen,
and what came closest. The messages are built here, so they read the same without assertion rewriting.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .exceptions import KindAuditError
from .query import AuditQuery

if TYPE_CHECKING:
    from .events import AuditEvent
    from .log import AuditEvents, AuditWindow

__all__ = ["assert_audited", "assert_not_audited", "current_window", "set_current_window"]

# The window of the test running now (set by the pytest layer), for the bare assert_audited().
_current: AuditWindow | None = None
#: Detail level of failure messages: 0 default, 1 with -v (every event), 2 with -vv.
verbosity = 0
CLOSEST_SHOWN = 5


class NoAuditWindow(KindAuditError):
    """A bare assert_audited() outside a test that uses the audited cluster."""


def set_current_window(window: AuditWindow | None) -> None:
    global _current
    _current = window


def current_window() -> AuditWindow:
    if _current is None:
        raise NoAuditWindow(
            "assert_audited() without a target searches the current test's events, but this test has no "
            "audit window: request the audited_cluster or audit_log fixture, or call "
            "audited_cluster.audit.assert_audited(...) for the whole session"
        )
    return _current


def assert_audited(
    *, count: int | None = None, at_least: int | None = None, timeout: float | None = None, **filters: Any
) -> AuditEvents:
    """Assert that the current test caused audit events matching ``filters``; return them.

    ``count`` asks for exactly that many, ``at_least`` for a minimum (default: at least one). Waits up to
    ``timeout`` seconds (default ``--kind-audit-timeout``) for the events to be written.
    """
    __tracebackhide__ = True
    return wait_for_events(current_window(), AuditQuery(**filters), count=count, at_least=at_least, timeout=timeout)


def assert_not_audited(*, timeout: float = 0.0, **filters: Any) -> None:
    """Assert that no event of the current test matches ``filters`` (looking again for ``timeout`` seconds)."""
    __tracebackhide__ = True
    check_absent(current_window(), AuditQuery(**filters), timeout=timeout)


def _expectation(count: int | None, at_least: int | None) -> tuple[str, int, int | None]:
    """Words ("at least 1 audit event"), minimum and maximum for the count arguments."""
    if count is not None and at_least is not None:
        raise TypeError("pass count= or at_least=, not both")
    for name, value in (("count", count), ("at_least", at_least)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise TypeError(f"{name}= must be a non-negative integer, got {value!r}")
    if count is not None:
        return f"exactly {_plural(count, 'audit event')}", count, count
    low = 1 if at_least is None else at_least
    return f"at least {_plural(low, 'audit event')}", low, None


def wait_for_events(
    window: AuditWindow, query: AuditQuery, *, count: int | None, at_least: int | None, timeout: float | None
) -> AuditEvents:
    __tracebackhide__ = True
    from .log import AuditEvents

    words, low, high = _expectation(count, at_least)
    wait = window.log.timeout if timeout is None else timeout
    matched: list[AuditEvent] = [e for e in window.all() if query.matches(e)]
    # The wait is counted from the first look: reading a backlog is not waiting for events.
    started = time.monotonic()
    deadline = started + wait
    delay = 0.05
    while True:
        too_many = high is not None and len(matched) > high
        if low <= len(matched) and not too_many:
            return AuditEvents(matched)
        if too_many or time.monotonic() >= deadline:
            break
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.5)
        matched += [e for e in window.refresh() if query.matches(e)]
    waited = time.monotonic() - started
    raise AssertionError(_failure(window, query, words, matched, waited))


def check_absent(window: AuditWindow, query: AuditQuery, *, timeout: float) -> None:
    __tracebackhide__ = True
    matched = [e for e in window.all() if query.matches(e)]
    started = time.monotonic()
    while not matched and time.monotonic() - started < timeout:
        time.sleep(min(0.2, max(0.0, timeout - (time.monotonic() - started))))
        matched = [e for e in window.refresh() if query.matches(e)]
    if matched:
        raise AssertionError(_unexpected(window, query, matched, time.monotonic() - started))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _failure(window: AuditWindow, query: AuditQuery, words: str, matched: list[AuditEvent], waited: float) -> str:
    events = list(window.all())
    lines = [
        f"expected {words} matching the query, found {len(matched)}",
        f"  query:    {query.describe()}",
        f"  searched: {_plural(len(events), 'event')} in {window.describe()}, waited {waited:.1f}s",
    ]
    if matched:
        lines += _listing("matching events", matched)
    near = [(len(d), i, e, d) for i, e in enumerate(events) if (d := query.differences(e))]
    near.sort(key=lambda t: (t[0], t[1]))
    if near and len(matched) < 1:
        shown = near if verbosity >= 1 else near[:CLOSEST_SHOWN]
        lines.append(f"  closest events ({len(shown)} shown, ranked by number of differing fields):")
        for rank, (_n, _i, event, diffs) in enumerate(shown, 1):
            lines.append(f"    {rank}. {event.summary()}")
            lines.append(f"         differs: {'; '.join(map(str, diffs))}")
        if len(shown) < len(near):
            lines.append(f"  (use -v to list all {len(near)} non-matching events)")
    elif not events:
        lines.append("  the window holds no events: did the request reach this cluster, and does the policy log it?")
    if not matched:
        lines += _policy_hint(window, query)
    if verbosity >= 2:
        lines.append("  every event in the window:")
        lines += [f"    {e.summary()}" for e in events]
    return "\n".join(lines)


_LEVEL_RANK = {"None": 0, "Metadata": 1, "Request": 2, "RequestResponse": 3}
_ATTRS = ("verb", "resource", "subresource", "namespace", "name", "api_group")


def _policy_hint(window: AuditWindow, query: AuditQuery) -> list[str]:
    """What the policy does with the request the query describes, when that explains the miss."""
    policy, f = window.log.policy, query.filters
    if policy is None or not isinstance(f.get("verb"), str):
        return []
    attrs: dict[str, Any] = {k: f[k] for k in _ATTRS if isinstance(f.get(k), str)}
    user, groups = window.log.identity or ("", ())
    if isinstance(f.get("user"), str):
        user, groups = f["user"], ((f["group"],) if isinstance(f.get("group"), str) else ())
    if not user:
        return []
    decision = policy.level_for(user=user, groups=groups, **attrs)
    described = " ".join(f"{k}={v!r}" for k, v in {**attrs, "user": user}.items())
    head = f"  policy:   the policy logs a request like this ({described}) at {decision.describe()}"
    if decision.level == "None":
        return [head, "            so the API server writes no event for it"]
    stage = f.get("stage")
    if isinstance(stage, str) and stage in decision.omit_stages:
        return [head, f"            and omits its {stage} stage (omitStages)"]
    wanted = f.get("level")
    if isinstance(wanted, str) and _LEVEL_RANK.get(wanted, 0) > _LEVEL_RANK.get(decision.level, 0):
        return [head, f"            below the level={wanted!r} the query asks for"]
    return []


def _unexpected(window: AuditWindow, query: AuditQuery, matched: list[AuditEvent], waited: float) -> str:
    lines = [
        f"expected no audit event matching the query, found {len(matched)}",
        f"  query:    {query.describe()}",
        f"  searched: {_plural(len(window), 'event')} in {window.describe()}, watched {waited:.1f}s",
        *_listing("matching events", matched),
    ]
    return "\n".join(lines)


def _listing(title: str, events: list[AuditEvent]) -> list[str]:
    shown = events if verbosity >= 1 else events[:CLOSEST_SHOWN]
    lines = [f"  {title}:", *[f"    {i}. {e.summary()}" for i, e in enumerate(shown, 1)]]
    if len(shown) < len(events):
        lines.append(f"  (use -v to list all {len(events)})")
    return lines
