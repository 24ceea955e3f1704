from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pytest_kind_audit import AuditEvent, parse_text
from pytest_kind_audit.events import parse_line, parse_time

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
