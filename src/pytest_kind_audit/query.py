"""Filters over audit events: which events match, and how close a non-matching event came.

A filter value may be a string or number (equal), an iterable (any of), a compiled regex (full match),
a callable (predicate) or None (no constraint; ``stage=None`` searches every stage).

``resource`` follows the audit policy's own matching (k8s.io/apiserver ``pkg/audit/policy/checker.go``):
``"pods"`` is requests on pods themselves, never a subresource; ``"pods/log"`` that subresource;
``"*/log"`` any resource's log; ``"pods/*"`` pods and all its subresources; ``"*"`` everything. A regex or a
callable sees ``resource/subresource``. With ``subresource=`` given, ``resource`` names the resource alone.

``annotations`` takes a mapping of annotation keys to values (a string, regex, callable or iterable, or
``True`` for "present"), or a key or keys that must be present.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .events import AuditEvent

__all__ = ["FILTERS", "AuditQuery", "Matcher"]

# A filter name -> how to read it off an event. "group" is multi-valued: any of the user's groups.
_GETTERS: dict[str, Callable[[AuditEvent], Any]] = {
    "verb": lambda e: e.verb,
    "resource": lambda e: f"{e.resource}/{e.subresource}" if e.subresource else e.resource,
    "subresource": lambda e: e.subresource,
    "namespace": lambda e: e.namespace,
    "name": lambda e: e.name,
    "api_group": lambda e: e.api_group,
    "user": lambda e: e.user.username,
    "group": lambda e: e.user.groups,
    "code": lambda e: e.code,
    "stage": lambda e: e.stage,
    "level": lambda e: e.level,
    "decision": lambda e: e.decision,
    "user_agent": lambda e: e.user_agent,
    "impersonated_user": lambda e: e.impersonated_username,
    "audit_id": lambda e: e.audit_id,
    "request_uri": lambda e: e.request_uri,
    "annotations": lambda e: e.annotations,
}
_MULTI = frozenset({"group"})

#: Every valid filter name, in the order failure messages list them.
FILTERS: tuple[str, ...] = tuple(_GETTERS)
DEFAULT_STAGE = "ResponseComplete"


class Matcher:
    """One filter value, normalised to a predicate with a readable description."""

    __slots__ = ("describe", "test", "value")

    def __init__(self, name: str, value: Any) -> None:
        self.value = value
        self.test: Callable[[Any], bool]
        if name == "resource" and isinstance(value, str):
            self.test = _resource_test(value)
            self.describe = repr(value)
        elif name == "resource" and _strings(value):
            tests = [_resource_test(v) for v in value]
            self.test = lambda actual: any(t(actual) for t in tests)
            self.describe = "any of " + repr(sorted(value))
        elif name == "annotations":
            self.test, self.describe = _annotations_test(value)
        elif isinstance(value, re.Pattern):
            pattern: re.Pattern[str] = value
            self.test = lambda actual: actual is not None and pattern.fullmatch(str(actual)) is not None
            self.describe = f"re.compile({pattern.pattern!r})"
        elif isinstance(value, (str, int)):
            self.test = lambda actual: actual == value
            self.describe = repr(value)
        elif callable(value):
            fn: Callable[[Any], Any] = value
            self.test = lambda actual: bool(fn(actual))
            self.describe = getattr(value, "__name__", repr(value))
            if self.describe == "<lambda>":
                self.describe = "<predicate>"
        elif isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
            options = frozenset(value)
            if not all(isinstance(o, (str, int)) for o in options):
                raise TypeError(f"filter {name}=: an iterable must hold strings or numbers, got {value!r}")
            self.test = lambda actual: actual in options
            self.describe = "any of " + repr(sorted(options, key=str))
        else:
            raise TypeError(
                f"filter {name}={value!r}: use a string or number, an iterable of them, "
                "a compiled regex, a callable, or None"
            )


def _strings(value: Any) -> bool:
    return (
        isinstance(value, Iterable)
        and not isinstance(value, (str, bytes, Mapping))
        and all(isinstance(v, str) for v in value)
    )


def _resource_test(spec: str) -> Callable[[Any], bool]:
    """The policy checker's resource matching, for ``actual`` in the ``resource[/subresource]`` form."""
    if spec == "*":
        return bool
    if spec.startswith("*/"):
        sub = spec[2:]
        return lambda actual: actual.partition("/")[2] == sub
    if spec.endswith("/*"):
        res = spec[:-2]
        return lambda actual: actual.partition("/")[0] == res
    return lambda actual: actual == spec


def _annotations_test(value: Any) -> tuple[Callable[[Any], bool], str]:
    if isinstance(value, str):
        value = [value]
    if _strings(value):  # keys that must be present
        keys = list(value)
        return (lambda actual: all(k in actual for k in keys)), "with " + ", ".join(map(repr, keys))
    if not isinstance(value, Mapping) or not value:
        raise TypeError(
            f"filter annotations={value!r}: use a mapping of annotation keys to values (True for present), "
            "or the keys that must be present"
        )
    checks = {k: (None if v is True else Matcher(k, v)) for k, v in value.items()}

    def test(actual: Mapping[str, str]) -> bool:
        return all(k in actual and (m is None or m.test(actual[k])) for k, m in checks.items())

    described = ", ".join(f"{k!r}: {'present' if m is None else m.describe}" for k, m in checks.items())
    return test, "{" + described + "}"


@dataclass(frozen=True)
class Difference:
    """Why one event did not match one filter."""

    field: str
    actual: Any
    expected: str

    def __str__(self) -> str:
        return f"{self.field}: {self.actual!r} is not {self.expected}"


class AuditQuery:
    """A reusable set of filters; ``stage`` defaults to ResponseComplete unless given (None means any)."""

    def __init__(self, **filters: Any) -> None:
        unknown = sorted(set(filters) - set(_GETTERS))
        if unknown:
            raise TypeError(
                f"unknown audit filter {', '.join(map(repr, unknown))}; valid filters: {', '.join(FILTERS)}"
            )
        filters.setdefault("stage", DEFAULT_STAGE)
        self.filters: dict[str, Any] = {k: v for k, v in filters.items() if v is not None}
        getters = dict(_GETTERS)
        if "subresource" in self.filters:  # resource= then names the resource alone
            getters["resource"] = lambda e: e.resource
        self._matchers = [(k, getters[k], Matcher(k, v), k in _MULTI) for k, v in self.filters.items()]

    def matches(self, event: AuditEvent) -> bool:
        for _name, get, matcher, multi in self._matchers:
            actual = get(event)
            if multi:
                if not any(matcher.test(a) for a in actual):
                    return False
            elif not matcher.test(actual):
                return False
        return True

    def differences(self, event: AuditEvent) -> list[Difference]:
        """Every filter the event fails, in filter order (empty when it matches)."""
        out = []
        for name, get, matcher, multi in self._matchers:
            actual = get(event)
            ok = any(matcher.test(a) for a in actual) if multi else matcher.test(actual)
            if not ok:
                if name == "annotations":  # only the annotations asked about, not the event's every one
                    asked = matcher.value if isinstance(matcher.value, Mapping) else [matcher.value]
                    keys = [matcher.value] if isinstance(matcher.value, str) else list(asked)
                    actual = {k: actual.get(k) for k in keys}
                out.append(Difference(name, list(actual) if multi else actual, matcher.describe))
        return out

    def hidden_subresources(self, events: Iterable[AuditEvent]) -> dict[str, int]:
        """For ``resource="pods"`` (no subresource asked): the events this query would also match if it said
        ``"pods/*"``, counted by ``resource/subresource``. What a negative assert did not look at."""
        spec = self.filters.get("resource")
        if not isinstance(spec, str) or "/" in spec or spec == "*" or "subresource" in self.filters:
            return {}
        wider = AuditQuery(**{**self.filters, "resource": f"{spec}/*"})
        found: dict[str, int] = {}
        for e in events:
            if e.subresource and wider.matches(e):
                key = f"{e.resource}/{e.subresource}"
                found[key] = found.get(key, 0) + 1
        return found

    def describe(self) -> str:
        return " ".join(f"{name}={m.describe}" for name, _g, m, _multi in self._matchers) or "(any event)"

    def __repr__(self) -> str:
        return f"AuditQuery({self.describe()})"
