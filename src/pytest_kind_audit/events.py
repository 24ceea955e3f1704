"""Typed audit.k8s.io/v1 events, parsed from the log backend's JSON lines or a webhook EventList.

Tolerant on purpose: every optional field may be absent, and old audit.k8s.io/v1beta1 lines (second-precision
``timestamp``, no ``requestReceivedTimestamp``) still parse. Unknown keys are ignored but kept in ``raw``.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
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
        extra = data.get("extra")
        username = data.get("username", "")
        groups = tuple(data.get("groups") or ())
        if extra or "uid" in data:
            return cls(username, data.get("uid", ""), groups, {k: tuple(v) for k, v in extra.items()} if extra else {})
        # A log holds few identities many times over: share one immutable object per identity.
        key = (username, groups)
        user = _USERS.get(key)
        if user is None:
            if len(_USERS) > 4096:
                _USERS.clear()
            user = _USERS[key] = cls(username, "", groups, {})
        return user


_ANONYMOUS = UserInfo()
_USERS: dict[tuple[str, tuple[str, ...]], UserInfo] = {}


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


class RawJSON(Mapping[str, Any]):
    """An event's JSON as the API server wrote it, kept as the line's bytes and decoded on first use: a
    session holds many events and rarely looks at their raw form, so this keeps a third of the memory."""

    __slots__ = ("_data", "_line")

    def __init__(self, line: bytes) -> None:
        self._line = line
        self._data: dict[str, Any] | None = None

    def _decoded(self) -> dict[str, Any]:
        if self._data is None:
            self._data = _loads(self._line)
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __repr__(self) -> str:
        return f"RawJSON({self._line[:60]!r}...)"


def parse_time(value: str | None) -> datetime | None:
    """An aware UTC datetime from a MicroTime (``...:37.655912Z``) or a second-precision RFC 3339 string."""
    if not value:
        return None
    if value[-1] == "Z":
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=_UTC)


@dataclass(frozen=True)
class AuditEvent:
    """One audit.k8s.io/v1 Event. Field names follow the API in snake_case; ``raw`` keeps the decoded JSON."""

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
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], line: bytes | None = None) -> AuditEvent:
        """Build an event from one decoded JSON object (a log line or an EventList item); with the
        ``line`` it was decoded from, ``raw`` keeps the bytes instead of the decoded objects."""
        get = data.get
        ref = get("objectRef")
        status = get("responseStatus")
        imp = get("impersonatedUser")
        received = get("requestReceivedTimestamp")
        stage_ts = get("stageTimestamp")
        if received is None and stage_ts is None:  # v1beta1: one second-precision timestamp
            received = stage_ts = get("timestamp") or (get("metadata") or _EMPTY).get("creationTimestamp")
        received_at = parse_time(received)
        # Fill the frozen instance's __dict__ in one step: the generated __init__ sets each of the
        # 19 fields through object.__setattr__, which costs more than decoding the JSON line.
        event = _new(cls)
        event.__dict__.update(zip(_EVENT_FIELDS, (
            get("level", ""),
            get("auditID", ""),
            get("stage", ""),
            get("requestURI", ""),
            get("verb", ""),
            UserInfo.from_json(get("user")),
            UserInfo.from_json(imp) if imp else None,
            tuple(get("sourceIPs") or ()),
            get("userAgent", ""),
            ObjectRef.from_json(ref) if ref else None,
            ResponseStatus.from_json(status) if status else None,
            get("requestObject"),
            get("responseObject"),
            received_at,
            received_at if stage_ts == received else parse_time(stage_ts),
            get("annotations") or _EMPTY,
            get("authenticationMetadata"),
            get("apiVersion", ""),
            data if line is None else RawJSON(line),
        ), strict=True))  # fmt: skip
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


_new = object.__new__
_EVENT_FIELDS = tuple(f.name for f in fields(AuditEvent))


def parse_line(line: bytes | str) -> AuditEvent | None:
    """One JSON line to an event; None for a blank line."""
    if not line.strip():
        return None
    return AuditEvent.from_json(_loads(line))


def _iter_objects(text: str) -> Iterator[Mapping[str, Any]]:
    stripped = text.lstrip()
    if stripped.startswith("{") and '"EventList"' in stripped[:200]:
        try:
            whole = json.loads(stripped)
        except ValueError:
            whole = None
        if isinstance(whole, dict) and whole.get("kind") == "EventList":
            yield from whole.get("items") or ()
            return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = _loads(line)
        except ValueError as exc:
            raise ValueError(f"line {number} is not JSON: {exc}: {line[:120]!r}") from None
        if isinstance(obj, dict) and obj.get("kind") == "EventList":
            yield from obj.get("items") or ()
        else:
            yield obj


def parse_text(text: str) -> list[AuditEvent]:
    """Every event of a JSON-lines log, or of one (possibly pretty-printed) EventList."""
    return [AuditEvent.from_json(obj) for obj in _iter_objects(text)]


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
