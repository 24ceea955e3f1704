"""Whole pytest runs that create their own audited clusters, as a user would: the README example at
--kind-audit-level=RequestResponse, a failing test's audit section, keep-cluster, a user's kind config,
and Ctrl-C. Each run is a separate pytest process with its own cluster."""

from __future__ import annotations

import secrets
import shutil
import stat
from pathlib import Path

import pytest

from pytest_kind_audit import parse_text

from .helpers import delete_cluster, headless_chromium, node_containers

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parents[2] / "examples" / "test_example.py"


@pytest.mark.usefixtures("whole_run_env")
def test_readme_example_at_request_response_keeps_the_cluster_and_reports_failures(
    pytester: pytest.Pytester, kind_binary: str
) -> None:
    name = "ex-" + secrets.token_hex(3)
    shutil.copy(EXAMPLES, pytester.path / "test_example.py")
    pytester.makepyfile(
        test_failing="""
        from pytest_kind_audit import assert_audited

        def test_fails_with_its_events(audited_cluster):
            audited_cluster.kubectl("create", "namespace", "seen-by-the-report")
            assert_audited(verb="delete", resource="namespaces", name="seen-by-the-report", timeout=1)

        def test_touches_a_secret(audited_cluster):
            audited_cluster.kubectl("create", "secret", "generic", "pw", "-n", "default", "--from-literal=pw=hunter2")
            assert_audited(verb="create", resource="secrets", name="pw")
        """
    )
    logs = pytester.mkdir("logs")
    report = pytester.path / "report.html"
    try:
        result = pytester.runpytest_subprocess(
            "--kind-audit-level=RequestResponse", f"--kind-audit-cluster-name={name}", "--kind-audit-keep-cluster",
            f"--kind-audit-log-dir={logs}", f"--kind-audit-html={report}", "-p", "no:cacheprovider", timeout=900,
        )  # fmt: skip
        result.assert_outcomes(passed=4, failed=1)
        result.stdout.fnmatch_lines(
            [f"kind-audit: level=RequestResponse, cluster={name} (created), *keep=yes, reuse=no, require=yes*"]
        )
        result.stdout.fnmatch_lines([
            "E       AssertionError: expected at least 1 audit event matching the query, found 0",
            "E         query:    verb='delete' resource='namespaces' name='seen-by-the-report' stage='ResponseComplete'",
            "E         searched: * events in the window of test_fails_with_its_events (*), waited 1.*s",
            "E         closest events (* shown, ranked by number of differing fields):",
            "E           1. *  create  namespaces  seen-by-the-report  user=kubernetes-admin  code=201",
            "E                differs: verb: 'create' is not 'delete'",
        ])  # fmt: skip
        result.stdout.fnmatch_lines(
            ["*- kind-audit events (* in this test) -*", "*create  namespaces  seen-by-the-report*"]
        )
        result.stdout.fnmatch_lines([f"kind-audit: cluster kept; delete it with: * delete cluster --name {name}"])
        assert node_containers(name) == [f"{name}-control-plane"]

        # The saved log: private, complete, summarized.
        saved = logs / f"{name}-audit.log"
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        events = parse_text(saved.read_text())
        assert any(e.verb == "create" and e.name == "seen-by-the-report" for e in events)
        result.stdout.fnmatch_lines([f"kind-audit: saved {len(events)} audit events to {saved} (mode 0600)",
                                     "  by verb: *", "  by resource: *", "  by code: *"])  # fmt: skip
        # The HTML report: every test, Secret data redacted.
        result.stdout.fnmatch_lines([f"kind-audit: HTML report of 5 tests written to {report} (Secret data redacted)"])
        page = report.read_text()
        assert "hunter2" not in page and "aHVudGVyMg==" not in page
        check_report_in_a_browser(report)
    finally:
        delete_cluster(name)
    assert node_containers(name) == []


def check_report_in_a_browser(report: Path) -> None:
    """Load the report in headless Chromium, filter it, open an event, and read what is shown."""
    from selenium.webdriver.common.by import By

    with headless_chromium() as driver:
        driver.get(report.as_uri())
        sections = driver.find_elements(By.CSS_SELECTOR, "section")
        assert len(sections) == 5
        assert driver.find_element(By.CSS_SELECTOR, "section.failed h2").text.startswith(
            "test_failing.py::test_fails_with_its_events (failed)"
        )
        all_rows = len(driver.find_elements(By.CSS_SELECTOR, "tr.event"))
        box = driver.find_element(By.ID, "filter")
        box.send_keys("create secrets 201")
        rows = driver.find_elements(By.CSS_SELECTOR, "tr.event")
        assert 0 < len(rows) < all_rows
        assert all("create" in r.text and "secrets" in r.text and "201" in r.text for r in rows)
        assert driver.find_element(By.ID, "shown").text == f"{len(rows)} requests shown"
        secret_row = next(r for r in rows if "default/pw" in r.text)
        secret_row.click()
        body = secret_row.find_element(By.XPATH, "following-sibling::tr[1]")
        assert body.is_displayed()
        assert '"pw": "<redacted>"' in body.text and "hunter2" not in body.text


@pytest.mark.usefixtures("whole_run_env")
def test_user_kind_config_is_merged_and_ctrl_c_deletes_the_cluster(pytester: pytest.Pytester, kind_binary: str) -> None:
    name = "int-" + secrets.token_hex(3)
    config = pytester.path / "kind.yaml"
    config.write_text(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  labels:\n    team: audit\n"
    )
    pytester.makepyfile(
        test_a="""
        import os, signal
        from pytest_kind_audit import assert_audited

        def test_1_users_config_applied(audited_cluster):
            out = audited_cluster.kubectl("get", "nodes", "-l", "team=audit", "-o", "name")
            assert out.strip() == f"node/{audited_cluster.name}-control-plane"
            assert_audited(verb="list", resource="nodes")

        def test_2_interrupted(audited_cluster):
            # Python's own Ctrl-C handler, also where this run was started with SIGINT ignored (a shell's
            # background job), as a terminal user has it.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.kill(os.getpid(), signal.SIGINT)

        def test_3_never_runs():
            pass
        """
    )
    try:
        result = pytester.runpytest_subprocess(
            f"--kind-audit-kind-config={config}", f"--kind-audit-cluster-name={name}", "-p", "no:cacheprovider",
            timeout=900,
        )  # fmt: skip
        assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()[-3000:]
        result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
        result.stdout.fnmatch_lines(["*1 passed*"])
        assert node_containers(name) == [], "the interrupted run leaked its cluster"
    finally:
        delete_cluster(name)
