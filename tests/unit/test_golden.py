"""Golden-trail normalization, on real audit logs recorded on our own kind cluster (bench/data)."""

from __future__ import annotations

import dataclasses
import gzip
from datetime import timedelta
from functools import cache
from pathlib import Path

import pytest

from pytest_kind_audit import AuditEvent, AuditLog, FileSource
from pytest_kind_audit.events import ResponseStatus, parse_lines
from pytest_kind_audit.golden import Trail, TrailStep, audit_trail

DATA = Path(__file__).parents[2] / "bench" / "data"
ADMIN = "kubernetes-admin"
DEPLOYMENTS = "system:serviceaccount:kube-system:deployment-controller"


@cache
def recorded(level: str = "metadata") -> tuple[AuditEvent, ...]:
    with gzip.open(DATA / f"kind-v1-{level}.jsonl.gz") as f:
        return tuple(parse_lines(f.read().split(b"\n")))


def test_a_controllers_trail_drops_conflict_retries_and_repeats_and_names_made_up() -> None:
    events = recorded()
    raw = [e for e in events if e.username == DEPLOYMENTS and e.stage == "ResponseComplete"]
    assert [e.code for e in raw].count(409) == 2  # the recording has conflicts, and 19 requests in all
    assert len(raw) == 19
    assert audit_trail(events, user=DEPLOYMENTS).lines() == [
        "create replicasets.apps kube-system/coredns-66bc5c9577 201",
        "update deployments.apps/status kube-system/coredns 200",  # 200, 409 (retried), then 200 after the event
        "create events kube-system/coredns.* 201",
        "update deployments.apps/status kube-system/coredns 200",  # two in a row: one step
        "create replicasets.apps bench-a/web-c77cfb848 201",
        "create events bench-a/web.* 201",
        "update deployments.apps/status bench-a/web 200",  # 200, 409, 200, 200, 200, 200: one step
        "update replicasets.apps bench-a/web-c77cfb848 200",
        "create events bench-a/web.* 201",
        "update deployments.apps/status bench-a/web 200",
    ]


def test_a_clients_trail_leaves_discovery_out_and_has_one_step_per_request() -> None:
    events = recorded()
    admin = [e for e in events if e.username == ADMIN]
    assert any(e.object_ref is None for e in admin)  # kubectl's discovery: /api, /apis
    trail = audit_trail(events, user=ADMIN)
    assert all(not s.resource.startswith("/") and s.code is not None for s in trail.steps)
    start = trail.lines().index("create configmaps bench-a/settings-0 201")
    assert trail.lines()[start : start + 10] == [
        "create configmaps bench-a/settings-0 201",  # RequestReceived and ResponseComplete: one step
        "create configmaps bench-a/settings-1 201",
        "create configmaps bench-a/settings-2 201",
        "list configmaps bench-a/ 200",
        "get configmaps bench-a/settings-0 200",
        "get configmaps bench-a/settings-1 200",
        "patch configmaps bench-a/settings-1 200",
        "get configmaps bench-a/settings-2 200",
        "patch configmaps bench-a/settings-2 200",
        "delete configmaps bench-a/settings-2 200",
    ]


def test_a_re_established_watch_counts_once_at_its_first_place() -> None:
    events = recorded()
    watches = {e.audit_id for e in events if e.username == ADMIN and e.verb == "watch" and e.namespace == "bench-b"}
    assert len(watches) == 2  # kubectl watched pods bench-b/worker twice (wait, then delete's wait)
    lines = audit_trail(events, user=ADMIN).lines()
    assert lines.count("watch pods bench-b/worker 200") == 1
    assert lines.index("watch pods bench-b/worker 200") < lines.index("delete pods bench-b/worker 200")


def test_an_open_watch_is_a_step_from_its_response_started() -> None:
    watch = [e for e in recorded() if e.verb == "watch" and e.namespace == "bench-a" and e.resource == "pods"]
    open_watch = [e for e in watch if e.stage != "ResponseComplete"]
    assert [e.stage for e in open_watch] == ["RequestReceived", "ResponseStarted"]
    assert audit_trail(open_watch).lines() == ["watch pods bench-a/worker 200"]
    assert audit_trail(open_watch[:1]).lines() == ["watch pods bench-a/worker -"]  # not answered yet


def test_a_conflict_that_was_never_retried_stays() -> None:
    events = [e for e in recorded() if e.username == DEPLOYMENTS and e.name == "web" and e.verb == "update"]
    conflict = max(i for i, e in enumerate(events) if e.code == 409)
    assert audit_trail(events[: conflict + 1]).lines() == [
        "update deployments.apps/status bench-a/web 200",
        "update deployments.apps/status bench-a/web 409",
    ]


def test_unordered_is_the_distinct_steps_sorted_by_what_they_touch() -> None:
    trail = audit_trail(recorded(), user=DEPLOYMENTS, ordered=False)
    assert trail.lines() == [
        "update deployments.apps/status bench-a/web 200",
        "update deployments.apps/status kube-system/coredns 200",
        "create events bench-a/web.* 201",
        "create events kube-system/coredns.* 201",
        "create replicasets.apps bench-a/web-c77cfb848 201",
        "update replicasets.apps bench-a/web-c77cfb848 200",
        "create replicasets.apps kube-system/coredns-66bc5c9577 201",
    ]


def test_namespaces_read_as_their_placeholders() -> None:
    events = [e for e in recorded() if e.username == ADMIN and "bench-a" in (e.namespace, e.name)]
    lines = audit_trail(events, namespaces={"bench-a": "<namespace>"}).lines()
    assert "create configmaps <namespace>/settings-0 201" in lines
    assert "delete namespaces <namespace> 200" in lines  # a namespace's own requests: shown once, as its name
    assert not [line for line in lines if "bench-a" in line]


def test_a_generated_name_reads_as_a_star_and_a_real_word_does_not() -> None:
    pod = next(e for e in recorded() if e.resource == "pods" and e.verb == "delete" and e.name.startswith("web-"))
    assert audit_trail([pod]).lines()[0].startswith("delete pods bench-a/web-c77cfb848-* ")
    assert pod.object_ref is not None
    renamed = [dataclasses.replace(pod, audit_id=n, object_ref=dataclasses.replace(pod.object_ref, name=n))
               for n in ("web-cache", "db-nginx", "web-2")]  # fmt: skip
    assert [s.name for s in audit_trail(renamed).steps] == ["web-cache", "db-nginx", "web-2"]


def test_a_panic_is_a_final_stage() -> None:
    get = next(e for e in recorded() if e.username == ADMIN and e.verb == "get" and e.stage == "ResponseComplete"
               and e.object_ref is not None)  # fmt: skip
    panic = dataclasses.replace(get, stage="Panic", response_status=ResponseStatus(code=500))
    assert audit_trail([get, panic]).steps[0].code == 500


def test_the_trail_is_its_text_with_the_records() -> None:
    trail = audit_trail(recorded(), user=DEPLOYMENTS)
    assert isinstance(trail, str)
    assert trail == "\n".join(trail.lines())
    assert trail.steps[0] == TrailStep("create", "replicasets.apps", "kube-system", "coredns-66bc5c9577", 201)
    assert Trail([]) == ""


def test_a_windows_trail_is_its_own_identitys_from_the_test_body_on(tmp_path: Path) -> None:
    log_file = tmp_path / "audit.log"
    with gzip.open(DATA / "kind-v1-metadata.jsonl.gz") as f:
        log_file.write_bytes(f.read())
    log = AuditLog(FileSource(str(log_file)), identity=(DEPLOYMENTS, ()))
    window = log.session()
    first_web = next(e for e in recorded() if e.username == DEPLOYMENTS and e.namespace == "bench-a")
    assert first_web.request_received_timestamp is not None
    window.body_start = first_web.request_received_timestamp - timedelta(microseconds=1)
    window.namespace = "bench-a"
    assert window.trail(timeout=0).lines() == [
        "create replicasets.apps <namespace>/web-c77cfb848 201",
        "create events <namespace>/web.* 201",
        "update deployments.apps/status <namespace>/web 200",
        "update replicasets.apps <namespace>/web-c77cfb848 200",
        "create events <namespace>/web.* 201",
        "update deployments.apps/status <namespace>/web 200",
    ]
    assert window.trail(user="kubernetes-admin", namespaces={}, timeout=0).lines()[0].startswith("get pods bench-a")


def test_in_namespace_scopes_events_and_asserts(tmp_path: Path) -> None:
    log_file = tmp_path / "audit.log"
    with gzip.open(DATA / "kind-v1-metadata.jsonl.gz") as f:
        log_file.write_bytes(f.read())
    window = AuditLog(FileSource(str(log_file)), timeout=0).session()
    with pytest.raises(ValueError, match="request the audit_namespace fixture"):
        window.in_namespace()
    window.namespace = "bench-b"
    scoped = window.in_namespace()
    assert {e.namespace for e in scoped.events(stage=None)} == {"bench-b"}
    scoped.assert_audited(verb="create", resource="configmaps", name="settings-0", count=1)
    with pytest.raises(AssertionError, match=r"namespace 'bench-b'") as failed:
        scoped.assert_audited(verb="create", resource="deployments", name="web")  # it is in bench-a
    assert "searched:" in str(failed.value)
    window.in_namespace("bench-a").assert_audited(verb="create", resource="deployments", name="web", count=1)


def test_a_trail_survives_copy_and_pickle_and_events_without_timestamps() -> None:
    import copy
    import pickle

    trail = audit_trail(recorded(), user=DEPLOYMENTS)
    for clone in (copy.copy(trail), copy.deepcopy(trail), pickle.loads(pickle.dumps(trail))):
        assert clone == trail and clone.steps == trail.steps and isinstance(clone, Trail)
    undated = AuditEvent.from_json({"verb": "get", "stage": "ResponseComplete", "auditID": "x",
                                    "user": {"username": ADMIN}, "requestURI": "/api/v1/namespaces/n/pods/p",
                                    "objectRef": {"resource": "pods", "namespace": "n", "name": "p"},
                                    "responseStatus": {"code": 200}})  # fmt: skip
    dated = next(e for e in recorded() if e.username == ADMIN and e.stage == "ResponseComplete" and e.object_ref)
    assert audit_trail([undated, dated], user=ADMIN).lines()[-1] == "get pods n/p 200"  # last, not a TypeError
