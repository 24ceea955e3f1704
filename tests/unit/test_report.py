from __future__ import annotations

import json
import stat
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

from pytest_kind_audit import parse_text
from pytest_kind_audit.report import (
    REDACTED,
    build_html,
    counts,
    extra_html,
    redact_secrets,
    save_log,
    shown_test,
    timeline_svg,
)

from .test_folding import KUBELET, OWN, window

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
    assert [r["verb"] for r in test["requests"]] == ["create", "list"]
    assert test["requests"][0]["t"] == 0.0 and test["requests"][0]["code"] == 201
    assert test["requests"][0]["request"]["data"] == {"password": REDACTED}
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
    (row,) = shown["requests"]
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


def recorded_test(**extra: object) -> dict[str, object]:
    return {"nodeid": "t.py::test_configmaps", "outcome": "failed", "identity": OWN,
            "events": [dict(e.raw) for e in window()], **extra}  # fmt: skip


def test_the_report_shows_one_row_per_request_own_identity_first_and_marks_the_failed_asserts_events() -> None:
    events = window()
    ids = [e.audit_id for e in events]
    failure = {"assertion": "assert_audited", "query": "verb='delete'", "audit_ids": [ids[-1], ids[0]]}
    test = shown_test(recorded_test(failure=failure))
    assert test["events"] == len(events) and len(test["requests"]) == len(set(ids))
    assert test["failure"] == {"assertion": "assert_audited", "query": "verb='delete'"}
    assert [a["user"] for a in test["actors"]][:2] == [OWN, KUBELET] and test["actors"][0]["own"]
    assert sum(a["count"] for a in test["actors"]) == len(test["requests"])
    rows = {r["mark"]: r for r in test["requests"] if r["mark"]}
    assert sorted(rows) == [1, 2]
    starts = [r["t"] for r in test["requests"]]
    assert starts[0] == 0.0 and starts == sorted(starts) and test["span"] >= starts[-1]
    missing = next(r for r in test["requests"] if r["code"] == 404)
    assert (missing["verb"], missing["name"], missing["stages"]) == (
        "get",
        "settings-2",
        ["RequestReceived", "ResponseComplete"],
    )


def test_the_timeline_has_a_lane_per_actor_and_a_mark_per_request() -> None:
    test = shown_test(recorded_test())
    svg = timeline_svg(test)
    assert svg.count("<rect ") == len(test["requests"])
    assert svg.count("<line ") == len(test["actors"])
    lanes = {a["user"]: i for i, a in enumerate(test["actors"])}
    for n, r in enumerate(test["requests"]):
        mark = svg.split(f'data-request="{n}"')[0].rsplit("<rect ", 1)[1]
        assert f'y="{lanes[r["user"]] * 16 + 2}"' in mark
        assert ('fill="#d97706"' in mark) == (r["code"] == 404), "4xx coloured, nothing else"


class Parsed(HTMLParser):
    """The elements and the text a browser's parser would make of a piece of markup."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        assert not any(name.startswith("on") for name, _ in attrs), f"an event handler on <{tag}>"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_pytest_html_extra_is_static_escaped_and_folds_other_actors() -> None:
    hostile = {**SECRET_CREATE, "auditID": "h1", "user": {"username": "<script>window.__pwned=1</script>"},
               "objectRef": {"resource": "configmaps", "namespace": "<!--", "name": '<img src=x onerror="alert(1)">'},
               "responseStatus": {"code": 500}}  # fmt: skip
    record = recorded_test(events=[dict(e.raw) for e in window()] + [hostile])
    record["failure"] = {"assertion": "assert_audited", "query": "name='</p><script>alert(2)</script>'",
                         "audit_ids": [window()[-1].audit_id]}  # fmt: skip
    test = shown_test(record)
    markup = extra_html(test)
    parsed = Parsed(markup)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    text = "".join(parsed.text)
    assert "<script>window.__pwned=1</script>" in text and '<img src=x onerror="alert(1)">' in text
    assert "name='</p><script>alert(2)</script>'" in text, "the failed query, shown as text"
    # The test's own requests are rows; every other actor is one <details> line with its rows inside.
    others = [a for a in test["actors"] if not a["own"]]
    assert parsed.tags.count("details") == len(others)
    assert f"<summary>{others[0]['count']} requests by {KUBELET}</summary>" in markup
    assert "<summary>1 request by &lt;script&gt;window.__pwned=1&lt;/script&gt;, 1 with 4xx/5xx</summary>" in markup
    assert parsed.tags.count("tr") == len(test["requests"])
    assert parsed.tags.count("svg") == 1 and parsed.tags.count("rect") == len(test["requests"])
    assert parsed.tags.count("circle") == 1, "the failed assert's event ringed in the timeline"
