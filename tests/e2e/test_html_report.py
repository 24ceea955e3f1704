"""The HTML report in a real browser, with event content written to break it: a ConfigMap whose values are
HTML comments, script tags and line separators, created on a real cluster at RequestResponse, must show up
as text in the page, and none of it may run or stop the page's own script."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

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
        assert driver.find_element(By.ID, "shown").text == "1 events shown"
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
