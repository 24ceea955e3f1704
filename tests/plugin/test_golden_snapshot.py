"""A golden trail with real syrupy, over a real recorded log (no cluster): --snapshot-update writes it, the
next run passes, and a controller that starts making an extra request fails with a readable diff."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("syrupy")  # in the dev extra; the plugin itself never imports it

LOG = Path(__file__).parents[2] / "bench" / "data" / "kind-v1-metadata.jsonl.gz"

TEST = f"""
import dataclasses, gzip, os
from pytest_kind_audit.events import parse_lines
from pytest_kind_audit.golden import audit_trail

CONTROLLER = "system:serviceaccount:kube-system:deployment-controller"

def test_deployment_controller(snapshot):
    with gzip.open({str(LOG)!r}) as f:
        events = parse_lines(f.read().split(b"\\n"))
    if os.environ.get("EXTRA_LIST"):  # the new version lists ReplicaSets before its first status update
        update = next(e for e in events if e.username == CONTROLLER and e.verb == "update" and e.code == 200)
        ref = dataclasses.replace(update.object_ref, resource="replicasets", subresource="", name="")
        extra = dataclasses.replace(update, verb="list", audit_id="extra", object_ref=ref)
        events.insert(events.index(update), extra)
    assert audit_trail(events, user=CONTROLLER) == snapshot
"""


def test_update_then_pass_then_a_readable_diff(
    pytester: pytest.Pytester, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_controller=TEST)
    written = pytester.runpytest("-p", "no:cacheprovider", "--snapshot-update")
    written.assert_outcomes(passed=1)
    snapshot = (pytester.path / "__snapshots__" / "test_controller.ambr").read_text()
    assert "  create replicasets.apps kube-system/coredns-66bc5c9577 201\n" in snapshot
    assert "  update deployments.apps/status bench-a/web 200\n" in snapshot

    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)

    monkeypatch.setenv("EXTRA_LIST", "1")
    changed = pytester.runpytest("-p", "no:cacheprovider")
    changed.assert_outcomes(failed=1)
    out = changed.stdout.str()
    assert "+ list replicasets.apps kube-system/ 200" in out, out
    assert "1 snapshot failed" in out
    assert (pytester.path / "__snapshots__" / "test_controller.ambr").read_text() == snapshot  # not rewritten
