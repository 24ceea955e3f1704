"""assert_audited / assert_not_audited, and failure messages that say what was expected, what was seen,
and what came closest. The messages are built here, so they read the same without assertion rewriting.

The signature is written once, on ``AssertMethods``: windows, the session log and the bare functions for
the current test all inherit it. Whatever a message needs (policy, identity, verbosity, timeout) comes
from the window searched, never from module state.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .collection import AuditEvents
from .exceptions import KindAuditWarning, LogStreamBroken, NoAuditWindow
from .policy import LEVELS
from .query import AuditQuery

if TYPE_CHECKING:
    from .events import AuditEvent
    from .policy import AuditPolicy

__all__ = ["AssertMethods", "FailedQuery", "Searchable", "assert_audited", "assert_not_audited", "current_window",
           "failed_query", "set_current_window"]  # fmt: skip

CLOSEST_SHOWN = 5
# How often a waiting assert reads the log again: a read is one round trip to the node's reader.
POLL_INTERVAL = 0.01


@dataclass(frozen=True)
class FailedQuery:
    """What a failed assert looked for, for the reports: which assert, the query as its message writes it, and
    the audit IDs of the events its message names (matches, then the closest events; for
    assert_not_audited, the matches it did not want)."""

    assertion: str
    query: str
    audit_ids: tuple[str, ...]


# Carried by the AssertionError itself: the reports read it from the exception that failed the test, so an
# assert caught inside the test (pytest.raises) marks nothing, and no module state is needed.
_FAILED_QUERY_ATTR = "_kind_audit_failed_query"


def failed_query(exc: BaseException | None) -> FailedQuery | None:
    """The query of the failed assert behind ``exc`` (or an exception it was raised from or during)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        found = getattr(exc, _FAILED_QUERY_ATTR, None)
        if isinstance(found, FailedQuery):
            return found
        exc = exc.__cause__ or exc.__context__
    return None


def _assertion(message: str, failed: FailedQuery) -> AssertionError:
    error = AssertionError(message)
    setattr(error, _FAILED_QUERY_ATTR, failed)
    return error


class Searchable(Protocol):
    """What an assert needs of the events it searches (an AuditWindow)."""

    #: Seconds to wait for events when the assert does not say.
    timeout: float
    #: Detail of failure messages: 0 default, 1 with -v (every event), 2 with -vv.
    verbosity: int
    #: The policy the API server runs with, and the identity (user, groups) of this process's requests,
    #: so a failure can say what the policy does with the request looked for.
    policy: AuditPolicy | None
    identity: tuple[str, tuple[str, ...]] | None

    def __len__(self) -> int: ...
    def all(self) -> AuditEvents: ...
    def refresh(self) -> list[AuditEvent]: ...
    def describe(self) -> str: ...


class AssertMethods:
    """``assert_audited`` and ``assert_not_audited`` over the events ``_searched()`` returns."""

    def _searched(self) -> Searchable:
        raise NotImplementedError

    def assert_audited(
        self, *, count: int | None = None, at_least: int | None = None, timeout: float | None = None, **filters: Any
    ) -> AuditEvents:
        """Assert that audit events matching ``filters`` were written (for the bare function: caused by the
        current test); return them.

        ``count`` asks for exactly that many, ``at_least`` for a minimum (default: at least one). Waits up to
        ``timeout`` seconds (default ``--kind-audit-timeout``) for the events to be written; AssertionError
        with the closest events if they are not.
        """
        __tracebackhide__ = True
        query = AuditQuery(**filters)
        return wait_for_events(self._searched(), query, count=count, at_least=at_least, timeout=timeout)

    def assert_not_audited(self, *, timeout: float = 0.0, **filters: Any) -> None:
        """Assert that no audit event matches ``filters`` (watching for ``timeout`` seconds; default: one look
        now)."""
        __tracebackhide__ = True
        check_absent(self._searched(), AuditQuery(**filters), timeout=timeout)


# The window of the test running now, for the bare assert_audited(). A context variable, reset by the
# fixture that set it, so nothing leaks out of a test (or out of an in-process pytester run).
_current: ContextVar[Searchable | None] = ContextVar("kind_audit_current_window", default=None)


def set_current_window(window: Searchable | None) -> Token[Searchable | None]:
    """Make ``window`` the target of the bare asserts; pass the token to ``reset_current_window``."""
    return _current.set(window)


def reset_current_window(token: Token[Searchable | None]) -> None:
    _current.reset(token)


def current_window() -> Searchable:
    window = _current.get()
    if window is None:
        raise NoAuditWindow(
            "assert_audited() without a target searches the current test's events, but this test has no "
            "audit window: request the audited_cluster or audit_log fixture, or call "
            "audited_cluster.audit.assert_audited(...) for the whole session"
        )
    return window


class _CurrentTest(AssertMethods):
    def _searched(self) -> Searchable:
        return current_window()


_current_test = _CurrentTest()
#: Assert on the current test's events (its audit window); see AssertMethods.assert_audited.
assert_audited = _current_test.assert_audited
#: Assert that none of the current test's events match; see AssertMethods.assert_not_audited.
assert_not_audited = _current_test.assert_not_audited


def _expectation(count: int | None, at_least: int | None) -> tuple[str, int, int | None]:
    """Words ("at least 1 audit event"), minimum and maximum for the count arguments."""
    if count is not None and at_least is not None:
        raise ValueError(f"pass count= or at_least=, not both (got count={count!r}, at_least={at_least!r})")
    for name, value in (("count", count), ("at_least", at_least)):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name}= must be a whole number, got {value!r}")
        if value < 0:
            raise ValueError(f"{name}= must not be negative, got {value!r}")
    if count is not None:
        return f"exactly {_plural(count, 'audit event')}", count, count
    low = 1 if at_least is None else at_least
    return f"at least {_plural(low, 'audit event')}", low, None


def wait_for_events(
    window: Searchable, query: AuditQuery, *, count: int | None, at_least: int | None, timeout: float | None
) -> AuditEvents:
    __tracebackhide__ = True
    words, low, high = _expectation(count, at_least)
    wait = window.timeout if timeout is None else timeout
    with _readable():
        return _wait(window, query, words, low, high, wait)


def _wait(window: Searchable, query: AuditQuery, words: str, low: int, high: int | None, wait: float) -> AuditEvents:
    __tracebackhide__ = True
    matched: list[AuditEvent] = [e for e in window.all() if query.matches(e)]
    # The wait is counted from the first look: reading a backlog is not waiting for events.
    started = time.monotonic()
    deadline = started + wait
    while True:
        too_many = high is not None and len(matched) > high
        if low <= len(matched) and not too_many:
            return AuditEvents(matched)
        if too_many or time.monotonic() >= deadline:
            break
        time.sleep(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))
        matched += [e for e in window.refresh() if query.matches(e)]
    waited = time.monotonic() - started
    message, closest = _failure(window, query, words, matched, waited)
    raise _assertion(message, FailedQuery("assert_audited", query.describe(), closest))


def check_absent(window: Searchable, query: AuditQuery, *, timeout: float) -> None:
    __tracebackhide__ = True
    with _readable():
        _check_absent(window, query, timeout)


def _check_absent(window: Searchable, query: AuditQuery, timeout: float) -> None:
    __tracebackhide__ = True
    seen = list(window.all())
    matched = [e for e in seen if query.matches(e)]
    started = time.monotonic()
    while not matched and time.monotonic() - started < timeout:
        time.sleep(min(POLL_INTERVAL, max(0.0, timeout - (time.monotonic() - started))))
        fresh = window.refresh()
        seen += fresh
        matched = [e for e in fresh if query.matches(e)]
    if matched:
        message = _unexpected(window, query, matched, time.monotonic() - started)
        ids = tuple(e.audit_id for e in matched)
        raise _assertion(message, FailedQuery("assert_not_audited", query.describe(), ids))
    hidden = query.hidden_subresources(seen)  # what was looked at: no second read of the log
    if hidden:  # passed, but only because resource= never covers subresources: say so
        counted = ", ".join(f"{n} {what}" for what, n in sorted(hidden.items()))
        plural = "s were" if sum(hidden.values()) != 1 else " was"
        wider = query.filters["resource"] + "/*"
        message = f"{counted} request{plural} not counted; resource={wider!r} includes them"
        warnings.warn(KindAuditWarning(message), stacklevel=4)


@contextmanager
def _readable() -> Iterator[None]:
    """A log that cannot be read fails the assert with one line saying why (the node is gone, paused)."""
    __tracebackhide__ = True
    try:
        yield
    except LogStreamBroken as exc:
        raise AssertionError(f"cannot read the audit log: {exc}") from None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _failure(
    window: Searchable, query: AuditQuery, words: str, matched: list[AuditEvent], waited: float
) -> tuple[str, tuple[str, ...]]:
    """The message, and the audit IDs of the events it names (closest first)."""
    events = list(window.all())
    named: list[AuditEvent] = list(matched)
    lines = [
        f"expected {words} matching the query, found {len(matched)}",
        f"  query:    {query.describe()}",
        f"  searched: {_plural(len(events), 'event')} in {window.describe()}, waited {waited:.1f}s",
    ]
    if matched:
        lines += _listing("matching events", matched, window.verbosity)
    near = [(len(d), i, e, d) for i, e in enumerate(events) if (d := query.differences(e))]
    near.sort(key=lambda t: (t[0], t[1]))
    if near and len(matched) < 1:
        shown = near if window.verbosity >= 1 else near[:CLOSEST_SHOWN]
        lines.append(f"  closest events ({len(shown)} shown, ranked by number of differing fields):")
        for rank, (_n, _i, event, diffs) in enumerate(shown, 1):
            named.append(event)
            lines.append(f"    {rank}. {event.summary()}")
            lines.append(f"         differs: {'; '.join(map(str, diffs))}")
        if len(shown) < len(near):
            lines.append(f"  (use -v to list all {len(near)} non-matching events)")
    elif not events:
        lines.append("  the window holds no events: did the request reach this cluster, and does the policy log it?")
    if not matched:
        lines += _policy_hint(window, query)
    if window.verbosity >= 2:
        lines.append("  every event in the window:")
        lines += [f"    {e.summary()}" for e in events]
    return "\n".join(lines), tuple(e.audit_id for e in named)


_ATTRS = ("verb", "resource", "subresource", "namespace", "name", "api_group")


def _policy_hint(window: Searchable, query: AuditQuery) -> list[str]:
    """What the policy does with the request the query describes, when that explains the miss."""
    policy, f = window.policy, query.filters
    if policy is None or not isinstance(f.get("verb"), str):
        return []
    attrs: dict[str, Any] = {k: f[k] for k in _ATTRS if isinstance(f.get(k), str)}
    user, groups = window.identity or ("", ())
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
    if wanted in LEVELS and LEVELS.index(wanted) > LEVELS.index(decision.level):
        return [head, f"            below the level={wanted!r} the query asks for"]
    return []


def _unexpected(window: Searchable, query: AuditQuery, matched: list[AuditEvent], waited: float) -> str:
    lines = [
        f"expected no audit event matching the query, found {len(matched)}",
        f"  query:    {query.describe()}",
        f"  searched: {_plural(len(window), 'event')} in {window.describe()}, watched {waited:.1f}s",
        *_listing("matching events", matched, window.verbosity),
    ]
    return "\n".join(lines)


def _listing(title: str, events: list[AuditEvent], verbosity: int) -> list[str]:
    shown = events if verbosity >= 1 else events[:CLOSEST_SHOWN]
    lines = [f"  {title}:", *[f"    {i}. {e.summary()}" for i, e in enumerate(shown, 1)]]
    if len(shown) < len(events):
        lines.append(f"  (use -v to list all {len(events)})")
    return lines
