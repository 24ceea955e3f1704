"""Namespace names, and which events are a fresh namespace's setup, on real recorded events."""

from __future__ import annotations

import dataclasses
import gzip
import re
from datetime import timedelta
from pathlib import Path

from pytest_kind_audit.events import parse_lines
from pytest_kind_audit.namespaces import FreshNamespace, namespace_name

DATA = Path(__file__).parents[2] / "bench" / "data" / "kind-v1-metadata.jsonl.gz"
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def test_names_are_unique_dns_labels_that_say_whose_they_are() -> None:
    long_label = "test_" + "x" * 80 + "[param-Ü_1]"
    names = [namespace_name("test_pods[RequestResponse-2]"), namespace_name(long_label), namespace_name("")]
    assert names[0].startswith("kat-test-pods-requestresponse-2-")
    assert names[1].startswith("kat-test-xxx")
    assert all(DNS_LABEL.fullmatch(n) and len(n) <= 63 for n in names), names
    assert namespace_name("t") != namespace_name("t")


class Admin:
    identity = "kubernetes-admin"


def test_setup_is_the_namespaces_own_requests_between_start_and_ready_and_after_deleting() -> None:
    with gzip.open(DATA) as f:
        events = parse_lines(f.read().split(b"\n"))
    # bench-a's creation, as the recording has it: kubectl's create, the controllers' answers, then the test.
    create = [e for e in events if e.verb == "create" and e.resource == "namespaces" and e.name in ("bench-a", "")]
    created = next(e for e in create if e.name == "bench-a")
    namespace = FreshNamespace(Admin(), "bench-a")  # type: ignore[arg-type]
    assert created.request_received_timestamp is not None
    namespace.started = created.request_received_timestamp - timedelta(milliseconds=1)
    in_bench_a = [e for e in events if e.namespace == "bench-a" and e.request_received_timestamp]
    first_test_request = next(e for e in in_bench_a if e.username == "kubernetes-admin" and e.resource == "configmaps")
    assert first_test_request.request_received_timestamp is not None
    namespace.ready = first_test_request.request_received_timestamp

    setup = [e for e in events if namespace.is_setup(e)]
    assert {(e.verb, e.resource, e.username) for e in setup} >= {
        ("create", "namespaces", "kubernetes-admin"),  # both stages: the first has no name yet
        ("create", "serviceaccounts", "system:serviceaccount:kube-system:service-account-controller"),
        ("create", "configmaps", "system:serviceaccount:kube-system:root-ca-cert-publisher"),
    }
    assert {e.stage for e in setup if e.resource == "namespaces"} == {"RequestReceived", "ResponseComplete"}
    assert all(e.namespace == "bench-a" or (e.resource == "namespaces" and e.name in ("bench-a", "")) for e in setup)
    assert not namespace.is_setup(first_test_request)
    # Another namespace created meanwhile by someone else is not this one's setup.
    assert created.object_ref is not None
    nameless = dataclasses.replace(created, object_ref=dataclasses.replace(created.object_ref, name=""))
    assert namespace.is_setup(nameless)  # the create's first stage, before the name is known
    other = dataclasses.replace(nameless, user=dataclasses.replace(created.user, username="someone"))
    assert not namespace.is_setup(other)

    deleted = next(e for e in events if e.verb == "delete" and e.resource == "namespaces" and e.name == "bench-a")
    assert not namespace.is_setup(deleted)
    assert deleted.request_received_timestamp is not None
    namespace.deleting = deleted.request_received_timestamp
    assert namespace.is_setup(deleted)
    assert not namespace.is_setup(next(e for e in events if e.namespace == "bench-b" and e.timestamp
                                       and e.timestamp > deleted.request_received_timestamp))  # fmt: skip
