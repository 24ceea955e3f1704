"""Typed audit.k8s.io/v1 events, parsed from the log backend's JSON lines or a webhook EventList.

Tolerant on purpose: every optional field may be absent, and old audit.k8s.io/v1beta1 lines (second-precision
``timestamp``, no ``requestReceivedTimestamp``) still parse. Unknown keys are ignored but kept in ``raw``.
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

try:  # An optional fast decoder; the standard library is the fallback.
    import orjson

    _loads: Callable[[bytes | str], Any] = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads

__all__ = [
    "STAGES",
    "AuditEvent",
    "ObjectRef",
    "ResponseStatus",
    "UserInfo",
    "parse_line",
    "parse_text",
]

#: Stages in the order one request produces them.
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")

_EMPTY: Mapping[str, Any] = {}
_UTC = timezone.utc


@dataclass(frozen=True, slots=True)
class UserInfo:
    """An authenticated (or impersonated) identity."""

    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> UserInfo:
        if not data:
            return _ANONYMOUS
        # A log holds few identities many times over: events share one UserInfo per identity. The JSON of
        # the last one seen under each name is compared with this one (one C-level comparison); it is our
        # own copy, as the caller's dict may change later.
        username = data.get("username", "")
        known = _USERS.get(username)
        if known is not None and known[0] == data:
            return known[1]
        extra = data.get("extra")
        groups = tuple(data.get("groups") or ())
        user = cls(username, data.get("uid", ""), groups, {k: tuple(v) for k, v in extra.items()} if extra else {})
        if len(_USERS) > 4096:
            _USERS.clear()
        _USERS[username] = (_copy_json(data), user)
        return user


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


_ANONYMOUS = UserInfo()
_USERS: dict[str, tuple[Any, UserInfo]] = {}


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """What a resource request was about. ``api_group`` is ``""`` for the core group."""

    resource: str = ""
    namespace: str = ""
    name: str = ""
    uid: str = ""
    api_group: str = ""
    api_version: str = ""
    resource_version: str = ""
    subresource: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ObjectRef:
        get = data.get
        return cls(
            get("resource", ""),
            get("namespace", ""),
            get("name", ""),
            get("uid", ""),
            get("apiGroup", ""),
            get("apiVersion", ""),
            get("resourceVersion", ""),
            get("subresource", ""),
        )


@dataclass(frozen=True, slots=True)
class ResponseStatus:
    """The subset of metav1.Status the API server records. Every field but ``code`` may be empty."""

    code: int | None = None
    status: str = ""
    reason: str = ""
    message: str = ""
    details: Mapping[str, Any] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResponseStatus:
        if len(data) == 2 and "metadata" in data:  # a plain success, {"metadata":{},"code":200}: shared
            code = data.get("code")
            status = _CODES.get(code)
            if status is None:
                status = _CODES[code] = cls(code)
            return status
        get = data.get
        return cls(get("code"), get("status", ""), get("reason", ""), get("message", ""), get("details"))


_CODES: dict[Any, ResponseStatus] = {}


def parse_time(value: str | None) -> datetime | None:
    """An aware UTC datetime from a MicroTime (``...:37.655912Z``) or a second-precision RFC 3339 string."""
    if not value:
        return None
    if value[-1] == "Z" and _OLD_ISOFORMAT:
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=_UTC)


#: Python 3.10's fromisoformat takes no "Z" (3.11's does, and returns UTC for it).
_OLD_ISOFORMAT = sys.version_info < (3, 11)


@dataclass(frozen=True)
class AuditEvent:
    """One audit.k8s.io/v1 Event. Field names follow the API in snake_case; ``raw`` is the event's JSON as a
    plain dict, ``raw_line`` the log line it was parsed from (bytes; None for an EventList item or a dict).

    Parsed events build ``impersonated_user``, ``source_ips``, ``object_ref``, ``response_status``, the two
    timestamps and ``raw`` on first read (see ``_Lazy``; ``user`` is one shared object per identity): a
    session parses every event but a query reads a few fields of each, and building them all cost more than
    decoding the line. Reading one is reading a field: the same values, types, equality and repr as if built
    at once, frozen before and after."""

    level: str
    audit_id: str
    stage: str
    request_uri: str
    verb: str
    user: UserInfo
    impersonated_user: UserInfo | None
    source_ips: tuple[str, ...]
    user_agent: str
    object_ref: ObjectRef | None
    response_status: ResponseStatus | None
    request_object: Mapping[str, Any] | None
    response_object: Mapping[str, Any] | None
    request_received_timestamp: datetime | None
    stage_timestamp: datetime | None
    annotations: Mapping[str, str]
    authentication_metadata: Mapping[str, Any] | None = None
    api_version: str = "audit.k8s.io/v1"
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    raw_line: bytes | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], line: bytes | None = None) -> AuditEvent:
        """Build an event from one decoded JSON object (a log line or an EventList item); with the
        ``line`` it was decoded from, ``raw`` is decoded again from the line when first read instead of
        keeping ``data`` (a session holds many events and rarely reads their raw form: a third less memory).
        The event keeps parts of ``data`` (bodies, annotations, the JSON of its lazy fields): don't change it."""
        get = data.get
        received = get("requestReceivedTimestamp")
        stage_ts = get("stageTimestamp")
        if received is None and stage_ts is None:  # v1beta1: one second-precision timestamp
            received = stage_ts = get("timestamp") or (get("metadata") or _EMPTY).get("creationTimestamp")
        # Fill the frozen instance's __dict__ directly, always in this order (instances then share one key
        # table): the generated __init__ sets each field through object.__setattr__, which costs more than
        # decoding the line. The lazy fields get their JSON under the keys _Lazy reads.
        event = _new(cls)
        d = event.__dict__
        d["level"] = get("level", "")
        d["audit_id"] = get("auditID", "")
        d["stage"] = get("stage", "")
        d["request_uri"] = get("requestURI", "")
        d["verb"] = get("verb", "")
        user = get("user")
        if user:  # UserInfo.from_json's lookup of an identity seen before, inline: nearly every event hits
            known = _USERS.get(user.get("username", ""))
            d["user"] = known[1] if known is not None and known[0] == user else UserInfo.from_json(user)
        else:
            d["user"] = _ANONYMOUS
        d["user_agent"] = get("userAgent", "")
        d["request_object"] = get("requestObject")
        d["response_object"] = get("responseObject")
        d["annotations"] = get("annotations") or _EMPTY
        d["authentication_metadata"] = get("authenticationMetadata")
        d["api_version"] = get("apiVersion", "")
        d["_impersonated_user"] = get("impersonatedUser")
        d["_source_ips"] = get("sourceIPs")
        d["_object_ref"] = get("objectRef")
        d["_response_status"] = get("responseStatus")
        d["_request_received_timestamp"] = received
        d["_stage_timestamp"] = True if stage_ts == received else stage_ts  # True: the same instant
        if line is None:
            d["raw"] = data if type(data) is dict else dict(data)
        d["raw_line"] = line
        return event

    # Derived views, named like the query filters.
    @property
    def code(self) -> int | None:
        """The HTTP status code, or None before the response (RequestReceived)."""
        return self.response_status.code if self.response_status else None

    @property
    def decision(self) -> str:
        """``allow`` or ``forbid`` from the authorizer, ``""`` where no decision was recorded."""
        return self.annotations.get("authorization.k8s.io/decision", "")

    @property
    def reason(self) -> str:
        """The authorizer's reason text (often empty)."""
        return self.annotations.get("authorization.k8s.io/reason", "")

    @property
    def is_resource(self) -> bool:
        return self.object_ref is not None

    @property
    def resource(self) -> str:
        return self.object_ref.resource if self.object_ref else ""

    @property
    def subresource(self) -> str:
        return self.object_ref.subresource if self.object_ref else ""

    @property
    def namespace(self) -> str:
        return self.object_ref.namespace if self.object_ref else ""

    @property
    def name(self) -> str:
        return self.object_ref.name if self.object_ref else ""

    @property
    def api_group(self) -> str:
        return self.object_ref.api_group if self.object_ref else ""

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def groups(self) -> tuple[str, ...]:
        return self.user.groups

    @property
    def impersonated_username(self) -> str:
        return self.impersonated_user.username if self.impersonated_user else ""

    @property
    def effective_user(self) -> UserInfo:
        """The identity the request acted as: the impersonated user if any, else the authenticated one."""
        return self.impersonated_user or self.user

    @property
    def timestamp(self) -> datetime | None:
        return self.stage_timestamp or self.request_received_timestamp

    @property
    def received_at(self) -> datetime | None:
        """When the API server received the request (the stage's time where that is all a line has): what
        windows and trails order and cut by."""
        return self.request_received_timestamp or self.stage_timestamp

    @property
    def latency(self) -> timedelta | None:
        if self.stage_timestamp and self.request_received_timestamp:
            return self.stage_timestamp - self.request_received_timestamp
        return None

    @property
    def path(self) -> str:
        return self.request_uri.split("?", 1)[0]

    def summary(self) -> str:
        """One line for humans: time, verb, resource, namespace/name, user, code."""
        ts = self.timestamp.strftime("%H:%M:%S.%f")[:-3] if self.timestamp else "--:--:--.---"
        if self.object_ref:
            what = self.resource + (f"/{self.subresource}" if self.subresource else "")
            where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        else:
            what, where = self.path, ""
        user = self.username or "<unauthenticated>"
        if self.impersonated_user:
            user += f" as {self.impersonated_user.username}"
        code = self.code if self.code is not None else "-"
        parts = [ts, self.verb, what, where, f"user={user}", f"code={code}"]
        return "  ".join(p for p in parts if p)


class _Lazy:
    """A field of a parsed AuditEvent, built on its first read from what the parser kept in the instance dict
    under ``source`` (``_<name>``: the JSON, dropped once built). The result is stored under the field's own
    name, where Python finds it before this (non-data) descriptor: later reads cost what any attribute read
    does. Events made by ``AuditEvent(...)`` have every field in their dict and never get here."""

    __slots__ = ("build", "keep", "name", "source")

    def __init__(self, name: str, build: Callable[[AuditEvent, Any], Any], source: str = "") -> None:
        self.name = name
        self.build = build
        self.source = source or f"_{name}"
        self.keep = bool(source)  # a field of its own (raw_line) stays

    def __get__(self, event: AuditEvent | None, owner: type | None = None) -> Any:
        if event is None:
            return self
        d = event.__dict__
        try:
            source = d[self.source]
        except KeyError:  # built and dropped by another thread since Python looked for the field
            return d[self.name]
        value = d[self.name] = self.build(event, source)
        if not self.keep:
            d.pop(self.source, None)
        return value


def _stage_timestamp(event: AuditEvent, source: str | bool | None) -> datetime | None:
    # True: the stage timestamp is the received one (RequestReceived, v1beta1): one datetime for both.
    return event.request_received_timestamp if source is True else parse_time(source)  # type: ignore[arg-type]


for _field in (
    _Lazy("impersonated_user", lambda event, data: UserInfo.from_json(data) if data else None),
    _Lazy("source_ips", lambda event, data: tuple(data or ())),
    _Lazy("object_ref", lambda event, data: ObjectRef.from_json(data) if data else None),
    _Lazy("response_status", lambda event, data: ResponseStatus.from_json(data) if data else None),
    _Lazy("request_received_timestamp", lambda event, text: parse_time(text)),
    _Lazy("stage_timestamp", _stage_timestamp),
    _Lazy("raw", lambda event, line: _loads(line), source="raw_line"),
):
    setattr(AuditEvent, _field.name, _field)

_new = object.__new__


def parse_line(line: bytes | str) -> AuditEvent | None:
    """One JSON line to an event; None for a blank line."""
    if not line.strip():
        return None
    return AuditEvent.from_json(_loads(line), line if isinstance(line, bytes) else line.encode())


def _iter_objects(text: str) -> Iterator[tuple[Mapping[str, Any], bytes | None]]:
    """Each event's JSON, with its line when it had one of its own (not an EventList item)."""
    stripped = text.lstrip()
    if stripped.startswith("{") and '"EventList"' in stripped[:200]:
        try:
            whole = json.loads(stripped)
        except ValueError:
            whole = None
        if isinstance(whole, dict) and whole.get("kind") == "EventList":
            for item in whole.get("items") or ():
                yield item, None
            return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = _loads(line)
        except ValueError as exc:
            raise ValueError(f"line {number} is not JSON: {exc}: {line[:120]!r}") from None
        if isinstance(obj, dict) and obj.get("kind") == "EventList":
            for item in obj.get("items") or ():
                yield item, None
        else:
            yield obj, line.encode()


def parse_text(text: str) -> list[AuditEvent]:
    """Every event of a JSON-lines log, or of one (possibly pretty-printed) EventList."""
    return [AuditEvent.from_json(obj, line) for obj, line in _iter_objects(text)]


def parse_lines(lines: Iterable[bytes]) -> list[AuditEvent]:
    """Events from complete JSON lines (the incremental reader's hot path)."""
    from_json = AuditEvent.from_json
    loads = _loads
    # Events are acyclic: the cyclic collector finds nothing in them, but a big batch would trigger it
    # over and over (it scans every tracked object), costing more than the parsing itself.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return [from_json(loads(line), line) for line in lines if line.strip()]
    finally:
        if enabled:
            gc.enable()
