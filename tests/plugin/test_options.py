"""Options, their precedence, the report header and every usage error, through a real pytest run."""

from __future__ import annotations

import pytest

from pytest_kind_audit import AuditPolicy

from .test_kind_binary import error_block

PASSING = "def test_ok():\n    pass\n"
USES_CLUSTER = "def test_x(audited_cluster):\n    pass\n"
LEVEL_CHOICES = "valid levels: None, Metadata, Request, RequestResponse"


pytestmark = pytest.mark.usefixtures("clean_env")


def test_header_echoes_the_settings(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("--kind-audit-cluster-name=demo", "--kind-audit-timeout=2.5")
    result.stdout.fnmatch_lines(
        [
            "kind-audit: level=Metadata, cluster=demo (created), image=kind default, kind=kind, keep=no, reuse=no, "
            "require=no, timeout=2.5s"
        ]
    )
    assert result.ret == 0


def test_default_cluster_name_is_unique_per_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    names = set()
    for _ in range(2):
        line = next(x for x in pytester.runpytest().outlines if x.startswith("kind-audit:"))
        names.add(line.split("cluster=")[1].split(" ")[0])
    assert len(names) == 2 and all(n.startswith("kind-audit-") for n in names)


def test_cli_over_env_over_ini_over_default(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(PASSING)
    pytester.makeini("[pytest]\nkind_audit_level = Request\nkind_audit_keep_cluster = true\n")
    monkeypatch.setenv("PYTEST_KIND_AUDIT_LEVEL", "RequestResponse")
    pytester.runpytest("--kind-audit-level=None").stdout.fnmatch_lines(["kind-audit: level=None, *keep=yes*"])
    pytester.runpytest().stdout.fnmatch_lines(["kind-audit: level=RequestResponse, *"])
    monkeypatch.delenv("PYTEST_KIND_AUDIT_LEVEL")
    pytester.runpytest().stdout.fnmatch_lines(["kind-audit: level=Request, *"])
    monkeypatch.setenv("PYTEST_KIND_AUDIT_KEEP_CLUSTER", "no")
    pytester.runpytest().stdout.fnmatch_lines(["kind-audit: *keep=no*"])


def usage_error(pytester: pytest.Pytester, *args: str, line: str) -> None:
    pytester.makepyfile(USES_CLUSTER)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {line}"])
    result.stderr.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    # Nothing was collected, so no cluster fixture ran.
    result.stdout.no_fnmatch_line("*collected*")


def test_invalid_level_on_the_command_line(pytester: pytest.Pytester) -> None:
    usage_error(pytester, "--kind-audit-level=Verbose",
                line=f"--kind-audit-level: 'Verbose' is not an audit level; {LEVEL_CHOICES}")  # fmt: skip


def test_invalid_level_from_env_names_the_variable(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_KIND_AUDIT_LEVEL", "metadata")
    usage_error(pytester, line=f"PYTEST_KIND_AUDIT_LEVEL: 'metadata' is not an audit level; {LEVEL_CHOICES}")


def test_invalid_level_from_ini_names_the_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkind_audit_level = all\n")
    usage_error(pytester, line=f"kind_audit_level: 'all' is not an audit level; {LEVEL_CHOICES}")


def test_policy_and_level_together(pytester: pytest.Pytester) -> None:
    policy = pytester.path / "p.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Metadata}]\n")
    usage_error(pytester, f"--kind-audit-policy={policy}", "--kind-audit-level=Request",
                line="--kind-audit-policy and --kind-audit-level cannot be combined*")  # fmt: skip


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (None, "--kind-audit-policy: audit policy file '*missing.yaml' does not exist"),
        ("rules: [\n", "--kind-audit-policy: audit policy file '*policy.yaml' is not valid YAML (line 2)"),
        ("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules: [{level: None}]\n",
         "--kind-audit-policy: audit policy *policy.yaml: apiVersion must be audit.k8s.io/v1, got 'audit.k8s.io/v1beta1'"),
        ("apiVersion: audit.k8s.io/v1\nkind: Pod\nrules: [{level: None}]\n",
         "--kind-audit-policy: audit policy *policy.yaml: kind must be Policy, got 'Pod'"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Full}]\n",
         f"--kind-audit-policy: audit policy *policy.yaml: rule 1: unknown level 'Full'; {LEVEL_CHOICES}"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n",
         "--kind-audit-policy: audit policy *policy.yaml: has no rules (kube-apiserver refuses a policy with 0 rules)"),
    ],
    ids=["missing", "not-yaml", "wrong-apiversion", "wrong-kind", "unknown-level", "no-rules"],
)  # fmt: skip
def test_bad_policy_files(pytester: pytest.Pytester, content: str | None, line: str) -> None:
    if content is None:
        path = pytester.path / "missing.yaml"
    else:
        path = pytester.path / "policy.yaml"
        path.write_text(content)
    usage_error(pytester, f"--kind-audit-policy={path}", line=line)


def test_policy_that_is_a_directory(pytester: pytest.Pytester) -> None:
    usage_error(pytester, f"--kind-audit-policy={pytester.path}", line="--kind-audit-policy: * is a directory")


def test_bad_timeout(pytester: pytest.Pytester) -> None:
    usage_error(pytester, "--kind-audit-timeout=soon",
                line="--kind-audit-timeout: 'soon' is not a number of seconds, e.g. --kind-audit-timeout=10")  # fmt: skip


def test_negative_timeout(pytester: pytest.Pytester) -> None:
    usage_error(pytester, "--kind-audit-timeout=-1", line="--kind-audit-timeout: '-1' must not be negative")


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("1.5", "--kind-audit-log-maxsize: '1.5' is not a whole number, e.g. --kind-audit-log-maxsize=100"),
        ("big", "--kind-audit-log-maxsize: 'big' is not a whole number, e.g. --kind-audit-log-maxsize=100"),
        ("-3", "--kind-audit-log-maxsize: '-3' must not be negative"),
    ],
)
def test_bad_log_maxsize(pytester: pytest.Pytester, value: str, line: str) -> None:
    usage_error(pytester, f"--kind-audit-log-maxsize={value}", line=line)


def test_bad_log_maxsize_from_ini_names_the_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkind_audit_log_maxsize = 1MB\n")
    usage_error(pytester, line="kind_audit_log_maxsize: '1MB' is not a whole number, e.g. kind_audit_log_maxsize=100")


def test_every_settings_option_is_a_flag_an_ini_key_and_an_env_var(pytester: pytest.Pytester) -> None:
    """The option table is the Settings fields: each one shows up in --help under all three names."""
    import dataclasses

    from pytest_kind_audit.options import OPTIONS, Settings

    declared = [f.name for f in dataclasses.fields(Settings) if "option" in f.metadata]
    assert [o.name for o in OPTIONS] == declared
    assert len(declared) == 14
    words = " ".join(pytester.runpytest("--help").stdout.str().split())
    for opt in OPTIONS:
        assert f"{opt.flag}" in words, opt.name
        assert f"ini: {opt.ini}, env: {opt.env}" in words, opt.name
        assert f"{opt.ini} (string):" in words, opt.name


def test_bad_boolean_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_KIND_AUDIT_REQUIRE", "maybe")
    usage_error(pytester, line="PYTEST_KIND_AUDIT_REQUIRE: 'maybe' is not a boolean; use one of 1, true, *")


def test_bad_cluster_name(pytester: pytest.Pytester) -> None:
    usage_error(pytester, "--kind-audit-cluster-name=My_Cluster",
                line="--kind-audit-cluster-name: 'My_Cluster' is not a valid kind cluster name;*")  # fmt: skip


def test_bad_kind_config(pytester: pytest.Pytester) -> None:
    path = pytester.path / "kind.yaml"
    path.write_text("kind: Pod\n")
    usage_error(pytester, f"--kind-audit-kind-config={path}",
                line="--kind-audit-kind-config: the kind config must be kind: Cluster*")  # fmt: skip


def test_kind_config_nodes_kind_cannot_audit(pytester: pytest.Pytester) -> None:
    path = pytester.path / "kind.yaml"
    path.write_text("nodes:\n- role: control-plane\n- role: worker\n- role: master\n")
    usage_error(pytester, f"--kind-audit-kind-config={path}",
                line="--kind-audit-kind-config: the kind config's node 3 has role 'master'; kind knows "
                     "control-plane and worker")  # fmt: skip
    path.write_text("nodes:\n- role: control-plane\n- role: control-plane\n")
    usage_error(pytester, f"--kind-audit-kind-config={path}",
                line="--kind-audit-kind-config: the kind config has 2 control-plane nodes; pytest-kind-audit "
                     "needs exactly one: it reads one API server's audit log *; add worker nodes instead")  # fmt: skip


def test_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("--fixtures")
    result.stdout.fnmatch_lines_random(
        [
            "audited_cluster [[]session scope[]]*",
            "audit_log*",
            "audit_policy [[]session scope[]]*",
            "kind_config [[]session scope[]]*",
            "kind_base_config [[]session scope[]]*",
        ]
    )


def test_missing_kind_skips_and_require_makes_it_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USES_CLUSTER)
    result = pytester.runpytest("-rs", "--kind-audit-kind-binary=/nonexistent/kind")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED *kind-audit: *"])
    result = pytester.runpytest("--kind-audit-kind-binary=/nonexistent/kind", "--kind-audit-require")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*kind-audit: *"])
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*During handling*")
    result.stdout.no_fnmatch_line("*site-packages*")


def test_tests_without_the_cluster_never_touch_docker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("--kind-audit-kind-binary=/nonexistent/kind", "--kind-audit-require")
    result.assert_outcomes(passed=1)


def test_a_misspelt_policy_key_is_a_warning_naming_it(pytester: pytest.Pytester) -> None:
    policy = pytester.path / "policy.yaml"
    policy.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
        "- level: None\n  namespace: [kube-system]\n  resources: [{group: '', resource: [pods]}]\n"
        "- level: Metadata\n"
    )
    pytester.makepyfile(PASSING)
    result = pytester.runpytest(f"--kind-audit-policy={policy}")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert (
        f"KindAuditWarning: audit policy {policy}: 'rules[1].namespace' is not a Policy field; kube-apiserver"
        " drops it silently, which widens the rule (did you mean 'namespaces'?)"
    ) in out
    assert f"KindAuditWarning: audit policy {policy}: 'rules[1].resources.resource' is not a Policy field;" in out
    assert "(did you mean 'resources'?)" in out
    assert AuditPolicy.from_file(policy).level_for(verb="get", user="u", resource="pods", namespace="x").level == "None"


def test_warnings_as_errors_stop_the_run(pytester: pytest.Pytester) -> None:
    policy = pytester.path / "policy.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrulez: []\nrules: [{level: Metadata}]\n")
    pytester.makepyfile(PASSING)
    result = pytester.runpytest(f"--kind-audit-policy={policy}", "-W", "error::pytest_kind_audit.KindAuditWarning")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*'rulez' is not a Policy field*(did you mean 'rules'?)*"])


def test_log_dir_and_html_paths_are_checked_before_any_cluster(pytester: pytest.Pytester) -> None:
    a_file = pytester.path / "file.txt"
    a_file.write_text("x")
    usage_error(pytester, f"--kind-audit-log-dir={a_file}", line=f"--kind-audit-log-dir: '{a_file}' is not a directory")
    usage_error(pytester, f"--kind-audit-log-dir={a_file}/sub",
                line=f"--kind-audit-log-dir: cannot create directory '{a_file}/sub': Not a directory")  # fmt: skip
    usage_error(pytester, f"--kind-audit-html={a_file}/sub/report.html",
                line=f"--kind-audit-html: cannot create directory '{a_file}/sub': Not a directory")  # fmt: skip
    usage_error(pytester, f"--kind-audit-html={pytester.path}",
                line=f"--kind-audit-html: '{pytester.path}' is a directory; name a file*")  # fmt: skip


def test_missing_output_directories_are_made(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    logs, html = pytester.path / "out" / "logs", pytester.path / "out" / "html" / "report.html"
    result = pytester.runpytest(f"--kind-audit-log-dir={logs}", f"--kind-audit-html={html}")
    result.assert_outcomes(passed=1)
    assert logs.is_dir() and html.parent.is_dir()


def test_docker_not_running_skips_with_one_line(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{pytester.path}/no-docker.sock")
    pytester.makepyfile(USES_CLUSTER)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED * kind-audit: Docker is not reachable (*): start the Docker daemon, or set DOCKER_HOST"]
    )
    result = pytester.runpytest("--kind-audit-require")
    result.assert_outcomes(errors=1)
    result.stdout.no_fnmatch_line("*Traceback*")


def test_missing_image_names_the_fix(pytester: pytest.Pytester) -> None:
    import shutil

    if shutil.which("kind") is None:
        pytest.skip("needs a kind binary on PATH")
    pytester.makepyfile(USES_CLUSTER)
    result = pytester.runpytest("-rs", "--kind-audit-image=kind-audit-ci/no-such-image:v0")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED * node image 'kind-audit-ci/no-such-image:v0' is not present and could not be pulled: *"]
    )


def test_a_kind_base_config_fixture_kind_cannot_audit_fails_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from pytest_kind_audit.environment import Environment

        @pytest.fixture(scope="session")
        def kind_audit_environment():  # no Docker needed: the config is refused before any is asked
            return Environment("kind", (0, 30, 0), "", (1, 34, 4), False, node_image="kind-audit-ci/node:v1.34.4-3")

        @pytest.fixture(scope="session")
        def kind_base_config():
            return {"nodes": [{"role": "control-plane"}, {"role": "Worker"}]}
        """
    )
    pytester.makepyfile("def test_x(kind_config):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    assert error_block(result.outlines) == (
        "kind-audit: the kind config's node 2 has role 'Worker'; kind knows control-plane and worker"
    )
