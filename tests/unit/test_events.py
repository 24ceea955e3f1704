from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_kind_audit import AuditEvent, UserInfo, parse_text
from pytest_kind_audit.events import parse_line, parse_lines, parse_time

LOGS = Path(__file__).parents[1] / "data" / "audit-logs"

# Counts from SOURCES.md, measured there with Python's json module.
COUNTS = {
    "liggitt-audit2rbac-demo-2017-v1beta1.jsonl": 757,
    "liggitt-audit2rbac-demo-head-v1-relabelled.jsonl": 37,
    "falcosecurity-falco-k8s_audit-trace-files.jsonl": 51,
    "sysdiglabs-aks-audit-log-eventhub-sample.jsonl": 22,
    "searchlight-auditsink-to-rbac-demo-eventlist.json": 1,
}


def load(name: str) -> list[AuditEvent]:
    return parse_text((LOGS / name).read_text())


@pytest.mark.parametrize(("name", "count"), COUNTS.items())
def test_every_real_event_parses(name: str, count: int) -> None:
    events = load(name)
    assert len(events) == count
    for event in events:
        assert event.stage in {"RequestReceived", "ResponseStarted", "ResponseComplete"}
        assert event.level in {"Metadata", "Request", "RequestResponse"}
        assert event.verb
        assert event.timestamp is not None and event.timestamp.tzinfo is not None


def test_v1beta1_counts_match_the_sources_statistics() -> None:
    events = load("liggitt-audit2rbac-demo-2017-v1beta1.jsonl")
    codes = [e.code for e in events]
    assert codes.count(200) == 256
    assert codes.count(201) == 80
    assert codes.count(404) == 90
    assert codes.count(403) == 11
    assert codes.count(None) == 320  # RequestReceived has no responseStatus
    assert sum(1 for e in events if e.impersonated_user) == 37
    assert sum(1 for e in events if not e.is_resource) == 23
    assert {e.verb for e in events} == {"get", "delete", "patch", "create", "list"}


def test_v1beta1_falls_back_to_the_second_precision_timestamp() -> None:
    event = load("liggitt-audit2rbac-demo-2017-v1beta1.jsonl")[0]
    assert event.api_version == "audit.k8s.io/v1beta1"
    assert event.request_received_timestamp == datetime(2017, 9, 11, 19, 55, 5, tzinfo=timezone.utc)
    assert event.stage_timestamp == event.request_received_timestamp
    assert event.user_agent == ""
    assert event.annotations == {}


def test_impersonation_and_forbidden() -> None:
    event = load("liggitt-audit2rbac-demo-2017-v1beta1.jsonl")[0]
    assert event.user.username == "system:admin"
    assert event.user.groups == ("system:masters", "system:authenticated")
    assert event.impersonated_user is not None and event.impersonated_user.username == "bob"
    assert event.effective_user.username == "bob"
    assert event.code == 403
    assert event.response_status is not None and event.response_status.reason == "Forbidden"
    assert event.resource == "pods" and event.namespace == "default" and event.name == ""


def test_microsecond_timestamps_bodies_and_annotations() -> None:
    event = load("falcosecurity-falco-k8s_audit-trace-files.jsonl")[0]
    assert event.request_received_timestamp == datetime(2018, 10, 25, 13, 58, 49, 730588, tzinfo=timezone.utc)
    assert event.latency == timedelta(microseconds=736141 - 730588)
    assert event.request_object is not None and event.request_object["metadata"]["name"] == "foo"
    assert event.decision == "allow"
    assert event.reason == ""
    assert event.api_group == ""


def test_exec_and_attach_are_101_response_started() -> None:
    events = [e for e in load("falcosecurity-falco-k8s_audit-trace-files.jsonl") if e.code == 101]
    assert sorted(e.subresource for e in events) == ["attach", "exec"]
    assert {e.stage for e in events} == {"ResponseStarted"}


def test_aks_409_without_message_and_non_resource_304() -> None:
    events = load("sysdiglabs-aks-audit-log-eventhub-sample.jsonl")
    conflict = next(e for e in events if e.code == 409)
    assert conflict.response_status is not None
    assert conflict.response_status.reason == "AlreadyExists"
    assert conflict.response_status.message == ""
    not_modified = next(e for e in events if e.code == 304)
    assert not not_modified.is_resource
    assert not_modified.path == "/openapi/v2"
    assert not_modified.resource == ""


def test_eventlist_items_have_no_kind_of_their_own() -> None:
    (event,) = load("searchlight-auditsink-to-rbac-demo-eventlist.json")
    assert event.verb == "patch"
    assert event.resource == "auditsinks" and event.name == "mysink"
    assert event.api_group == "auditregistration.k8s.io"
    assert event.api_version == ""


def test_events_are_frozen_and_compare_by_value() -> None:
    line = (LOGS / "sysdiglabs-aks-audit-log-eventhub-sample.jsonl").read_text().splitlines()[0]
    a, b = parse_line(line), parse_line(line.encode())
    assert a == b and a is not b
    with pytest.raises(AttributeError):
        a.verb = "delete"  # type: ignore[misc]


def test_blank_lines_are_skipped_and_bad_json_names_the_line() -> None:
    assert parse_line("   ") is None
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        parse_text('{"verb":"get"}\n{"verb":\n')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-05-05T16:16:37.655912Z", datetime(2020, 5, 5, 16, 16, 37, 655912, tzinfo=timezone.utc)),
        ("2017-09-11T19:55:05Z", datetime(2017, 9, 11, 19, 55, 5, tzinfo=timezone.utc)),
        (None, None),
    ],
)
def test_parse_time(text: str | None, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_minimal_event_tolerates_absent_fields() -> None:
    event = AuditEvent.from_json({"verb": "get"})
    assert event.user.username == "" and event.object_ref is None and event.code is None
    assert event.timestamp is None
    assert "code=-" in event.summary()


# Parsed events build their nested objects, timestamps and raw JSON on first read (events._Lazy).
LAZY = ("user", "impersonated_user", "source_ips", "object_ref", "response_status", "request_received_timestamp",
        "stage_timestamp", "raw")  # fmt: skip
V1BETA1 = LOGS / "liggitt-audit2rbac-demo-2017-v1beta1.jsonl"


def lines_of(name: str) -> list[bytes]:
    return [line for line in (LOGS / name).read_bytes().splitlines() if line.strip()]


def eventlist_items() -> list[AuditEvent]:
    return load("searchlight-auditsink-to-rbac-demo-eventlist.json")


def each_source() -> dict[str, list[AuditEvent]]:
    """The same kinds of events by every way in: the reader's lines, a log's text, an EventList's items."""
    name = "falcosecurity-falco-k8s_audit-trace-files.jsonl"
    return {"parse_lines": parse_lines(lines_of(name)), "parse_text": load(name), "EventList": eventlist_items()}


@pytest.mark.parametrize("source", ["parse_lines", "parse_text", "EventList"])
def test_raw_is_plain_json_data(source: str) -> None:
    for event in each_source()[source]:
        assert type(event.raw) is dict
        text = json.dumps(event.raw)  # RawJSON, a Mapping, raised TypeError here
        assert json.loads(text) == event.raw
        assert copy.deepcopy(event.raw) == event.raw
        assert event.raw["auditID"] == event.audit_id


def test_raw_line_is_the_line_and_raw_decodes_it() -> None:
    lines = lines_of("falcosecurity-falco-k8s_audit-trace-files.jsonl")
    for line, event in zip(lines, parse_lines(lines), strict=True):
        assert event.raw_line is line  # the reader's bytes, kept, not copied
        assert event.raw == json.loads(line)
    text_events = load("falcosecurity-falco-k8s_audit-trace-files.jsonl")
    assert [e.raw_line for e in text_events] == lines
    assert parse_line(lines[0].decode()).raw_line == lines[0]  # type: ignore[union-attr]
    (item,) = eventlist_items()
    assert item.raw_line is None and item.raw["verb"] == "patch"


def test_raw_is_decoded_once_and_not_kept_as_data() -> None:
    data = json.loads(lines_of("falcosecurity-falco-k8s_audit-trace-files.jsonl")[0])
    event = AuditEvent.from_json(data, json.dumps(data).encode())
    assert "raw" not in vars(event)  # only the line is held until someone reads raw
    assert event.raw is event.raw and event.raw == data and event.raw is not data


@pytest.mark.parametrize("source", ["parse_lines", "parse_text", "EventList"])
def test_events_pickle_and_copy_with_their_lazy_fields(source: str) -> None:
    for event in each_source()[source]:
        for clone in (pickle.loads(pickle.dumps(event)), copy.deepcopy(event), copy.copy(event)):
            assert clone == event
            assert clone.raw == event.raw and clone.raw_line == event.raw_line
            assert clone.summary() == event.summary()


def test_lazy_fields_match_the_json_on_every_real_event() -> None:
    for name in COUNTS:
        for event in load(name):
            data = event.raw
            user = data.get("user") or {}
            assert event.user.username == user.get("username", "")
            assert event.user.groups == tuple(user.get("groups") or ())
            assert event.user.extra == {k: tuple(v) for k, v in (user.get("extra") or {}).items()}
            assert event.impersonated_username == (data.get("impersonatedUser") or {}).get("username", "")
            assert event.source_ips == tuple(data.get("sourceIPs") or ())
            ref = data.get("objectRef")
            assert (event.object_ref is None) == (not ref)
            assert event.resource == (ref or {}).get("resource", "")
            assert event.namespace == (ref or {}).get("namespace", "")
            assert event.code == (data.get("responseStatus") or {}).get("code")
            received = data.get("requestReceivedTimestamp") or data.get("timestamp")
            stage = data.get("stageTimestamp") or data.get("timestamp")
            assert event.request_received_timestamp == parse_time(received)
            assert event.stage_timestamp == parse_time(stage)


def test_absent_user_object_ref_and_status_through_the_lazy_path() -> None:
    line = b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","verb":"get","requestURI":"/healthz"}'
    (event,) = parse_lines([line, b"  "])
    assert event.user == UserInfo() and event.username == ""
    assert event.impersonated_user is None and event.effective_user == UserInfo()
    assert event.object_ref is None and not event.is_resource and event.resource == ""
    assert event.response_status is None and event.code is None
    assert event.request_received_timestamp is None and event.stage_timestamp is None and event.latency is None
    assert event.source_ips == ()
    assert event.path == "/healthz"
    assert event.summary() == "--:--:--.---  get  /healthz  user=<unauthenticated>  code=-"


def test_v1beta1_lines_through_the_reader() -> None:
    lines = lines_of(V1BETA1.name)
    events = parse_lines(lines)
    assert events == load(V1BETA1.name)
    first = events[0]
    assert first.api_version == "audit.k8s.io/v1beta1"
    assert first.request_received_timestamp == datetime(2017, 9, 11, 19, 55, 5, tzinfo=timezone.utc)
    assert first.stage_timestamp is first.request_received_timestamp  # one instant, one object
    assert first.latency == timedelta(0)
    assert sum(1 for e in events if e.impersonated_user) == 37
    assert first.effective_user.username == "bob" and first.user.username == "system:admin"
    assert first.impersonated_user is not None and first.impersonated_user.groups == ("system:authenticated",)


def test_two_events_from_one_line_are_equal_whatever_each_has_read() -> None:
    line = lines_of(V1BETA1.name)[0]
    a, b = parse_lines([line, line])
    assert a is not b
    assert a.object_ref is not None and a.stage_timestamp is not None  # a builds these, b nothing yet
    assert "object_ref" in vars(a) and "object_ref" not in vars(b)
    assert a == b and b == a
    assert repr(a) == repr(b)
    assert dataclasses.astuple(a) == dataclasses.astuple(b)
    other = parse_lines([lines_of(V1BETA1.name)[1]])[0]
    assert a != other


def test_lazy_fields_are_frozen_before_and_after_the_first_read() -> None:
    (event,) = parse_lines(lines_of(V1BETA1.name)[:1])
    for name in LAZY:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(event, name, None)
        before = getattr(event, name)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(event, name, None)
        assert getattr(event, name) is before


def test_dataclass_api_is_unchanged_by_laziness() -> None:
    (event,) = parse_lines(lines_of(V1BETA1.name)[:1])
    names = [f.name for f in dataclasses.fields(AuditEvent)]
    assert names[-2:] == ["raw", "raw_line"] and set(LAZY) <= set(names)
    as_dict = dataclasses.asdict(event)
    assert as_dict["object_ref"]["resource"] == "pods" and as_dict["raw_line"] == event.raw_line
    changed = dataclasses.replace(event, verb="delete")
    assert changed.verb == "delete" and changed.user == event.user and changed.raw == event.raw
    eager = AuditEvent(**{f.name: getattr(event, f.name) for f in dataclasses.fields(AuditEvent)})
    assert eager == event and eager.object_ref is event.object_ref


def test_events_of_one_identity_share_its_user_info() -> None:
    def line(user: dict[str, Any]) -> bytes:
        return json.dumps({"verb": "get", "user": user}).encode()

    sa = {"username": "system:serviceaccount:ns:sa", "uid": "u1", "groups": ["g"], "extra": {"k": ["v1"]}}
    other_pod = {**sa, "extra": {"k": ["v2"]}}
    a, b, c, d = parse_lines([line(sa), line(sa), line(other_pod), line(sa)])
    assert a.user is b.user
    assert c.user.extra == {"k": ("v2",)} and c.user is not a.user
    assert d.user == a.user
    # The caller's dict may change after parsing: events keep what it held then.
    mine = copy.deepcopy(sa)
    first = AuditEvent.from_json({"verb": "get", "user": mine})
    mine["groups"].append("admins")
    second = AuditEvent.from_json({"verb": "get", "user": mine})
    assert first.user.groups == ("g",) and second.user.groups == ("g", "admins")


def test_received_at_is_the_receipt_time_else_the_stages() -> None:
    received, later = "2026-11-29T03:21:40.400000Z", "2026-11-29T03:21:40.500000Z"
    both = AuditEvent.from_json({"requestReceivedTimestamp": received, "stageTimestamp": later})
    assert both.received_at == parse_time(received) and both.timestamp == parse_time(later)
    stage_only = AuditEvent.from_json({"stageTimestamp": later})
    assert stage_only.received_at == parse_time(later)
    assert AuditEvent.from_json({}).received_at is None
