"""The HTML report in a real browser, with event content written to break it: a ConfigMap whose values are
HTML comments, script tags and line separators, created on a real cluster at RequestResponse, must show up
as text in the page, and none of it may run or stop the page's own script."""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from pathlib import Path

import pytest

from pytest_kind_audit import AuditedCluster, AuditWindow
from pytest_kind_audit.asserts import failed_query
from pytest_kind_audit.folding import fold
from pytest_kind_audit.report import build_html

from .helpers import delete_cluster, headless_chromium, node_containers

pytestmark = pytest.mark.e2e

# No "-->" anywhere: it would close the "<!--" and undo the damage an unescaped "<!--<script" does.
HOSTILE = [
    "<!--",
    "<!--<script",
    "<script>window.__pwned=1</script>",
    "</script><script>window.__pwned=2</script>",
    "<!--<script>window.__pwned=3</script>",
    '<img src=x onerror="window.__pwned=4">',
    "]]>",
    "<![CDATA[ ]]>",
    "line\u2028separator\u2029paragraph",
    "\"double\" 'single' `back`",
    "&lt;script&gt; &amp;",
]
# A test id is shown in its section's heading.
HOSTILE_ID = "<!--<script>window.__pwned=5</script>"

INNER_TESTS = f"""
import json
import pathlib

import pytest

from pytest_kind_audit import assert_audited

HOSTILE = json.loads((pathlib.Path(__file__).parent / "hostile.json").read_text())


@pytest.mark.parametrize("n", [0], ids=[{HOSTILE_ID!r}])
def test_creates_a_hostile_configmap(audited_cluster, n):
    configmap = {{"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {{"name": "hostile", "namespace": "default", "annotations": {{"note": HOSTILE[1]}}}},
                 "data": {{f"k{{i}}": v for i, v in enumerate(HOSTILE)}}}}
    audited_cluster.kubectl("create", "-f", "-", input=json.dumps(configmap))
    assert_audited(verb="create", resource="configmaps", name="hostile")


def test_reads_it_back(audited_cluster):
    data = json.loads(audited_cluster.kubectl("get", "configmap", "hostile", "-n", "default", "-o", "json"))["data"]
    assert data == {{f"k{{i}}": v for i, v in enumerate(HOSTILE)}}
    assert_audited(verb="get", resource="configmaps", name="hostile")
"""


@pytest.mark.usefixtures("whole_run_env")
def test_hostile_configmap_content_is_shown_as_text_and_never_runs(pytester: pytest.Pytester, kind_binary: str) -> None:
    name = "html-" + secrets.token_hex(3)
    pytester.makepyfile(test_hostile=INNER_TESTS)
    (pytester.path / "hostile.json").write_text(json.dumps(HOSTILE))
    report = pytester.path / "report.html"
    try:
        result = pytester.runpytest_subprocess(
            "--kind-audit-level=RequestResponse", f"--kind-audit-cluster-name={name}", f"--kind-audit-html={report}",
            "-p", "no:cacheprovider", timeout=900,
        )  # fmt: skip
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines([f"kind-audit: HTML report of 2 tests written to {report} (Secret data redacted)"])
        check_hostile_report_in_a_browser(report)
    finally:
        delete_cluster(name)  # the run deletes its cluster; this is for a run that could not
    assert node_containers(name) == []


def check_hostile_report_in_a_browser(report: Path) -> None:
    from selenium.webdriver.common.by import By

    with headless_chromium() as driver:
        driver.get(report.as_uri())
        # The page's own script ran: one section per test, with its event rows, and nothing else ran.
        headings = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "section h2")]
        assert [h.split(" (")[0] for h in headings] == [
            f"test_hostile.py::test_creates_a_hostile_configmap[{HOSTILE_ID}]",
            "test_hostile.py::test_reads_it_back",
        ]
        assert len(driver.find_elements(By.CSS_SELECTOR, "tr.event")) > 0
        assert driver.execute_script("return typeof window.__pwned") == "undefined"
        assert driver.execute_script("return document.scripts.length") == 2, "the data and the page's own script"

        # The create event, opened: its body shows every hostile string as text, in JSON quoting.
        driver.find_element(By.ID, "filter").send_keys("create configmaps hostile 201")
        (row,) = driver.find_elements(By.CSS_SELECTOR, "tr.event")
        assert "default/hostile" in row.text
        assert driver.find_element(By.ID, "shown").text == "1 requests shown"
        row.click()
        body = row.find_element(By.XPATH, "following-sibling::tr[1]")
        assert body.is_displayed()
        pre = body.find_element(By.TAG_NAME, "pre")
        assert pre.find_elements(By.XPATH, "./*") == [], "the body is text, no element was parsed from it"
        content = driver.execute_script("return arguments[0].textContent", pre)
        missing = [s for s in HOSTILE if json.dumps(s, ensure_ascii=False) not in content]
        assert missing == [], "not shown as text in the request or response body"
        for s in HOSTILE:
            if s.isascii():
                assert json.dumps(s) in body.text, "rendered on the page"
        assert driver.execute_script("return typeof window.__pwned") == "undefined"


def test_a_test_on_the_shared_cluster_reads_as_its_own_requests_first(
    audited_cluster: AuditedCluster, audit_log: AuditWindow, tmp_path: Path
) -> None:
    """This test's own window (a namespace it creates, so the controllers answer in it), reported and
    rendered: own rows, other actors folded until clicked, a lane per actor, the 404 coloured, the failed
    assert's query and closest events marked."""

    namespace = "report-" + secrets.token_hex(4)
    audited_cluster.kubectl("create", "namespace", namespace)
    try:
        audited_cluster.kubectl("create", "configmap", "shown", "-n", namespace, "--from-literal=k=v")
        audited_cluster.kubectl("get", "configmap", "absent", "-n", namespace, check=False)
        audit_log.assert_audited(verb="get", resource="configmaps", name="absent", code=404)
        # The root CA publisher (a controller-manager controller, its own ServiceAccount) answers the namespace.
        audit_log.assert_audited(verb="create", resource="configmaps", name="kube-root-ca.crt", namespace=namespace)
        check_own_test_report(audited_cluster, audit_log, tmp_path)
    finally:
        audited_cluster.kubectl("delete", "namespace", namespace, "--wait=false")


def check_own_test_report(audited_cluster: AuditedCluster, audit_log: AuditWindow, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    with pytest.raises(AssertionError) as missing:
        audit_log.assert_audited(verb="delete", resource="configmaps", name="shown", timeout=0)
    found = failed_query(missing.value)
    assert found is not None
    events = audit_log.all()
    record = {"nodeid": "t.py::test_shown", "outcome": "failed", "identity": audited_cluster.identity,
              "failure": dataclasses.asdict(found), "events": [dict(e.raw) for e in events]}  # fmt: skip
    page = tmp_path / "report.html"
    page.write_text(build_html([record], title="one test"))
    requests = fold(events)
    own = [r for r in requests if r.actor == audited_cluster.identity]
    others: dict[str, int] = {}
    for r in requests:
        if r.actor != audited_cluster.identity:
            others[r.actor] = others.get(r.actor, 0) + 1
    assert own and others, "the test's own requests and the controllers' answers"
    others_by_count = sorted(others, key=lambda user: (-others[user], user))

    with headless_chromium() as driver:
        driver.get(page.as_uri())
        assert driver.find_element(By.CSS_SELECTOR, "p.failure").text == (
            f"assert_audited failed: {found.query} (the events it names are marked \u2190 n)"
        )
        rows = driver.find_elements(By.CSS_SELECTOR, "tr.event")
        assert [r.find_elements(By.TAG_NAME, "td")[4].text for r in rows] == [r.actor for r in own]
        assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == [r.event.verb for r in own]
        folds = driver.find_elements(By.CSS_SELECTOR, "tr.fold")
        assert [fold_line(f.text)[0] for f in folds] == [
            f"{n} request{'s' if n != 1 else ''} by {user}"
            for user, n in ((user, others[user]) for user in others_by_count)
        ]
        # A lane per actor, a mark per request; the 404 row and mark coloured.
        lanes = [t.text for t in driver.find_elements(By.CSS_SELECTOR, "svg.timeline text.actor")]
        assert [lane.rsplit(" (", 1)[0] for lane in lanes] == [audited_cluster.identity, *others_by_count]
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg.timeline rect.mark")) == len(requests)
        (absent,) = driver.find_elements(By.CSS_SELECTOR, "tr.event.code4")
        assert "absent" in absent.text and "404" in absent.text
        assert absent.find_element(By.TAG_NAME, "td").value_of_css_property("color") == "rgba(180, 83, 9, 1)"
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg.timeline rect.mark.code4")) >= 1
        marked = driver.find_elements(By.CSS_SELECTOR, "tr.event.marked") + [
            f for f in folds if "(holds \u2190" in f.text
        ]
        assert marked, "the failed assert's closest events are marked where they are"
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg.timeline circle.ring")) == len(set(found.audit_ids))
        # A folded actor opens on click: its requests, and only its, appear under its line.
        user = fold_line(folds[0].text)[1]
        folds[0].click()
        opened = driver.find_elements(By.CSS_SELECTOR, "tr.event.folded")
        assert [r.find_elements(By.TAG_NAME, "td")[4].text for r in opened] == [
            r.actor for r in requests if r.actor == user
        ]
        assert len(driver.find_elements(By.CSS_SELECTOR, "tr.event")) == len(own) + len(opened)
        driver.find_elements(By.CSS_SELECTOR, "tr.fold")[0].click()
        assert driver.find_elements(By.CSS_SELECTOR, "tr.event.folded") == [], "and closes on a second click"


def fold_line(text: str) -> tuple[str, str]:
    """A folded actor's line ("\u25b8 3 requests by system:x, 1 with 4xx/5xx (holds \u2190 2)"): its
    "3 requests by system:x" part and the user."""
    found = re.fullmatch(r"[\u25b8\u25be] (\d+ requests? by (\S+?))(, \d+ with 4xx/5xx)?( \(holds .*\))?", text)
    assert found is not None, f"not a folded actor's line: {text!r}"
    return found.group(1), found.group(2)
