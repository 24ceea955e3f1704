from __future__ import annotations

import json
import stat
from importlib import resources
from pathlib import Path

from pytest_kind_audit import parse_text
from pytest_kind_audit.report import REDACTED, build_html, counts, redact_secrets, save_log

LOGS = Path(__file__).parents[1] / "data" / "audit-logs"

SECRET_CREATE = {
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": "a1",
    "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/t/secrets", "verb": "create",
    "user": {"username": "kubernetes-admin"}, "objectRef": {"resource": "secrets", "namespace": "t", "name": "s"},
    "responseStatus": {"metadata": {}, "code": 201},
    "requestObject": {"kind": "Secret", "data": {"password": "aHVudGVyMg=="}, "stringData": {"token": "hunter2"}},
    "responseObject": {"kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "aHVudGVyMg=="}},
    "requestReceivedTimestamp": "2026-11-28T10:00:00.000001Z", "stageTimestamp": "2026-11-28T10:00:00.002001Z",
}  # fmt: skip
SECRET_LIST = {
    **SECRET_CREATE, "auditID": "a2", "verb": "list", "requestObject": None,
    "responseObject": {"kind": "SecretList", "items": [{"metadata": {"name": "s"}, "data": {"password": "aHVudGVyMg=="}}]},
}  # fmt: skip


def test_secret_values_are_redacted_in_bodies_and_lists() -> None:
    create = redact_secrets(SECRET_CREATE)
    assert create["requestObject"]["data"] == {"password": REDACTED}
    assert create["requestObject"]["stringData"] == {"token": REDACTED}
    assert create["responseObject"]["data"] == {"password": REDACTED}
    assert SECRET_CREATE["requestObject"]["data"] == {"password": "aHVudGVyMg=="}, "the original is untouched"  # type: ignore[index]
    assert redact_secrets(SECRET_LIST)["responseObject"]["items"][0]["data"] == {"password": REDACTED}


def test_other_resources_are_not_redacted() -> None:
    configmap = {**SECRET_CREATE, "objectRef": {"resource": "configmaps", "name": "c"}}
    assert redact_secrets(configmap)["requestObject"]["data"] == {"password": "aHVudGVyMg=="}


def test_html_embeds_the_events_and_hides_secrets_unless_asked() -> None:
    tests = [{"nodeid": "t.py::test_a", "outcome": "failed", "events": [SECRET_CREATE, SECRET_LIST]}]
    page = build_html(tests, title="report")
    assert "hunter2" not in page and "aHVudGVyMg==" not in page
    data = json.loads(page.split('<script id="data" type="application/json">')[1].split("</script>")[0])
    (test,) = data
    assert test["test"] == "t.py::test_a" and test["outcome"] == "failed"
    assert [e["verb"] for e in test["events"]] == ["create", "list"]
    assert test["events"][0]["t"] == 0.0 and test["events"][0]["code"] == 201
    assert test["events"][0]["request"]["data"] == {"password": REDACTED}
    shown = build_html(tests, title="report", show_secrets=True)
    assert "hunter2" in shown


HOSTILE = [
    "<!--", "-->", "<!--<script", "<script>window.__pwned=1</script>", "</script>", "</SCRIPT >", "]]>",
    "<![CDATA[x", "a\u2028b\u2029c", "&amp; &lt; &#60;", "\"quoted\" 'single'", "back\\slash <\\/script>",
]  # fmt: skip
DATA_OPEN = '<script id="data" type="application/json">'
TEMPLATE = resources.files("pytest_kind_audit").joinpath("report.html").read_text()


def embedded_json(page: str) -> str:
    """The text of the data script element, as the HTML parser ends it: at the first ``</script``."""
    return page.split(DATA_OPEN)[1].split("</script")[0]


def test_embedded_json_holds_no_character_the_html_parser_reacts_to_and_decodes_to_the_same_data() -> None:
    configmap = {
        "kind": "ConfigMap",
        "metadata": {"name": "hostile"},
        "data": {f"k{i}": v for i, v in enumerate(HOSTILE)},
    }
    event = {**SECRET_CREATE, "objectRef": {"resource": "configmaps", "namespace": "<!--", "name": "<!--<script"},
             "user": {"username": "</script><script>window.__pwned=1</script>"},
             "requestObject": configmap, "responseObject": {**configmap, "list": HOSTILE}}  # fmt: skip
    tests = [{"nodeid": "t.py::test_<!--<script>[\u2028]", "outcome": "passed", "events": [event]}]
    page = build_html(tests, title="report")
    text = embedded_json(page)
    for dangerous in ("<", ">", "&", "\u2028", "\u2029"):
        assert dangerous not in text, f"{dangerous!r} in the embedded JSON"
    # The data element ends where the template's does, and the app script follows it intact.
    assert page.split(DATA_OPEN)[1][len(text) :] == TEMPLATE.split(DATA_OPEN)[1].split("@DATA@")[1]
    (shown,) = json.loads(text)
    assert shown["test"] == tests[0]["nodeid"]
    (row,) = shown["events"]
    assert (row["namespace"], row["name"], row["user"]) == (
        "<!--",
        "<!--<script",
        "</script><script>window.__pwned=1</script>",
    )
    assert row["request"] == configmap and row["response"] == {**configmap, "list": HOSTILE}


def test_the_page_script_never_parses_strings_as_html() -> None:
    script = TEMPLATE.split(DATA_OPEN)[1]
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function("):
        assert sink not in script


def test_html_cannot_be_broken_out_of_by_event_content() -> None:
    evil = {**SECRET_CREATE, "objectRef": {"resource": "configmaps", "name": "</script><script>alert(1)</script>"}}
    page = build_html([{"nodeid": "t", "events": [evil]}], title="<b>x</b> @DATA@")
    assert "</script><script>alert(1)" not in page
    assert "<title>&lt;b&gt;x&lt;/b&gt; @DATA@</title>" in page, "a title is text, and never receives the data"


def test_counts_by_verb_resource_and_code() -> None:
    events = parse_text((LOGS / "liggitt-audit2rbac-demo-2017-v1beta1.jsonl").read_text())
    by_verb, by_resource, by_code = counts(events, top=3)
    assert by_verb == "  by verb: get 201, delete 82, create 80, ... (2 more)"
    assert by_resource == "  by resource: roles 117, clusterroles 101, clusterrolebindings 93, ... (6 more)"
    assert by_code == "  by code: 200 256, 404 90, 201 80, ... (1 more)"


def test_saved_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_text("old")
    path.chmod(0o644)
    save_log(b"new", path)
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
