"""A test's events as the reports show them, on a real window: the ConfigMap steps of a recorded pytest session
on our own kind cluster (bench/data, Kubernetes v1.34.4, Request level), with the kubelet's requests in it."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

import pytest

from pytest_kind_audit import AuditEvent, AuditLog, FileSource, parse_text
from pytest_kind_audit.asserts import FailedQuery, failed_query
from pytest_kind_audit.folding import fold, group_by_actor, section

RECORDED = Path(__file__).parents[2] / "bench" / "data" / "kind-v1-request.jsonl.gz"
OWN = "kubernetes-admin"
KUBELET = "system:node:bench-rec-request-control-plane"
# The workload's first namespace: three ConfigMaps created, listed, read, one read after its deletion (404).
START = datetime(2026, 11, 29, 3, 21, 40, 400000, tzinfo=timezone.utc)
END = datetime(2026, 11, 29, 3, 21, 42, 0, tzinfo=timezone.utc)


@cache
def recorded() -> tuple[AuditEvent, ...]:
    return tuple(parse_text(gzip.decompress(RECORDED.read_bytes()).decode()))


def window() -> list[AuditEvent]:
    return [e for e in recorded() if e.request_received_timestamp and START <= e.request_received_timestamp < END]


def test_each_request_is_one_row_with_its_stages_and_final_code() -> None:
    events = window()
    requests = fold(events)
    assert len({e.audit_id for e in events}) == len(requests) < len(events)
    assert sorted(s for r in requests for s in r.stages) == sorted(e.stage for e in events), "no event lost or doubled"
    create = next(r for r in requests if r.event.verb == "create" and r.event.name == "settings-0")
    assert create.stages == ("RequestReceived", "ResponseComplete")
    assert (create.event.stage, create.code) == ("ResponseComplete", 201)
    assert create.received == next(e.request_received_timestamp for e in events if e.audit_id == create.audit_id)
    received = [r.received.timestamp() for r in requests if r.received]
    assert len(received) == len(requests) and received == sorted(received), "in the order the API server received them"


def test_a_request_without_its_response_yet_says_so() -> None:
    first = window()[0]
    (only,) = fold([first])
    assert first.stage == "RequestReceived" and not only.finished
    assert only.summary().endswith("(RequestReceived, no response yet)")


def test_actors_own_identity_first_then_by_number_of_requests() -> None:
    actors = group_by_actor(fold(window()), OWN)
    assert [a.user for a in actors][:2] == [OWN, KUBELET]
    assert [a.own for a in actors] == [True] + [False] * (len(actors) - 1)
    counts = [len(a.requests) for a in actors[1:]]
    assert counts == sorted(counts, reverse=True)
    assert all(r.actor == a.user for a in actors for r in a.requests)
    assert not any(a.own for a in group_by_actor(fold(window()), None)), "no identity known: none is the test's"


def test_terminal_section_folds_other_actors_into_one_line_each() -> None:
    events = window()
    requests = fold(events)
    kubelet = sum(1 for r in requests if r.actor == KUBELET)
    title, text = section(events, OWN)
    assert title == f"kind-audit events ({len(requests)} requests, {len(events)} events in this test)"
    lines = text.splitlines()
    own = [r for r in requests if r.actor == OWN]
    assert lines[: len(own)] == [r.summary() for r in own], "the test's own requests first, one line each"
    assert lines[len(own)] == f"{kubelet} requests by {KUBELET}"
    assert lines[-1] == "(use -v to list the other actors' requests)"
    assert not any(KUBELET in line and "user=" in line for line in lines), "the kubelet's requests are folded"
    assert "get  configmaps  bench-a/settings-2  user=kubernetes-admin  code=404" in text

    _, verbose = section(events, OWN, verbosity=1)
    listed = verbose.splitlines()
    at = listed.index(f"{kubelet} requests by {KUBELET}")
    assert listed[at + 1 : at + 1 + kubelet] == ["    " + r.summary() for r in requests if r.actor == KUBELET]

    _, raw = section(events, OWN, verbosity=2)
    assert [json.loads(line)["auditID"] for line in raw.splitlines()] == [e.audit_id for e in events]


def test_terminal_section_marks_the_events_a_failed_assert_names() -> None:
    events = window()
    requests = fold(events)
    missing = next(r for r in requests if r.event.name == "settings-2" and r.code == 404).audit_id
    # An assert names a request once per stage it lists: the request keeps its first rank.
    named = [missing, missing, next(r for r in requests if r.actor == KUBELET).audit_id]
    _, text = section(events, OWN, marked=named, query="verb='delete' resource='configmaps'")
    lines = text.splitlines()
    assert lines[0] == "<- n: the events the failed assert names, for verb='delete' resource='configmaps'"
    assert [line for line in lines if line.endswith("<- 1")] == [
        next(r.summary() for r in requests if r.audit_id == named[0]) + "  <- 1"
    ]
    assert any(line.startswith(f"{sum(r.actor == KUBELET for r in requests)} requests by {KUBELET}  (holds <- 2)")
               for line in lines), "a folded actor says it holds a named event"  # fmt: skip


def test_without_a_known_identity_nothing_is_folded() -> None:
    events = window()
    _, text = section(events, None)
    assert text.splitlines() == [r.summary() for a in group_by_actor(fold(events), None) for r in a.requests]


def test_a_failed_assert_carries_its_query_and_the_events_it_names(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text("".join(json.dumps(dict(e.raw)) + "\n" for e in window()))
    session = AuditLog(FileSource(log)).session()
    with pytest.raises(AssertionError) as missing:
        session.assert_audited(verb="delete", resource="configmaps", name="settings-0", timeout=0)
    found = failed_query(missing.value)
    assert found is not None and found.assertion == "assert_audited"
    assert found.query == "verb='delete' resource='configmaps' name='settings-0' stage='ResponseComplete'"
    assert len(found.audit_ids) == 5, "the five closest events the message lists"
    closest = next(e for e in window() if e.audit_id == found.audit_ids[0] and e.stage == "ResponseComplete")
    assert f"1. {closest.summary()}" in str(missing.value)

    with pytest.raises(AssertionError) as unexpected:
        session.assert_not_audited(verb="create", resource="configmaps", namespace="bench-a")
    assert failed_query(unexpected.value) == FailedQuery(
        "assert_not_audited", "verb='create' resource='configmaps' namespace='bench-a' stage='ResponseComplete'",
        tuple(e.audit_id for e in window() if (e.verb, e.resource, e.namespace, e.stage)
              == ("create", "configmaps", "bench-a", "ResponseComplete")),
    )  # fmt: skip
    with pytest.raises(AssertionError) as caught:
        session.assert_audited(verb="deletecollection", timeout=0)
    wrapped = RuntimeError("a helper re-raised it")
    wrapped.__cause__ = caught.value
    assert failed_query(wrapped) == failed_query(caught.value) is not None, "found through the exception chain"
    assert failed_query(AssertionError("plain")) is None


def test_events_without_an_audit_id_are_never_marked_and_vv_redacts_when_asked() -> None:
    from pytest_kind_audit.report import REDACTED, redact_secrets

    secret = AuditEvent.from_json({"verb": "create", "stage": "ResponseComplete", "user": {"username": OWN},
                                   "objectRef": {"resource": "secrets", "namespace": "n", "name": "s"},
                                   "requestObject": {"kind": "Secret", "data": {"k": "c2VjcmV0"}},
                                   "responseStatus": {"code": 201}})  # fmt: skip
    _, text = section([secret, *window()], OWN, marked=["", window()[0].audit_id], query="verb='x'")
    assert not any(line.endswith("<- 1") and "secrets" in line for line in text.splitlines())
    _, raw = section([secret], OWN, verbosity=2)
    assert "c2VjcmV0" in raw
    _, redacted = section([secret], OWN, verbosity=2, redact=redact_secrets)
    assert "c2VjcmV0" not in redacted and REDACTED in redacted
