"""What the plugin costs a run that makes no cluster: pytest imports it at every start (``--co``, tests that
use no cluster, each xdist worker), so loading it must not load the core behind the cluster."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Modules only a cluster, a test's window or the reports need, and PyYAML (our own imports of it are lazy).
CORE = ["cluster", "asserts", "log", "collection", "query", "authorizer", "identities", "rbac", "artifacts",
        "report", "namespaces"]  # fmt: skip

PROBE = textwrap.dedent(
    """
    import json, sys
    import pytest
    code = pytest.main(["-q", "-p", "no:cacheprovider", "-p", "pytest_kind_audit.plugin", {args}])
    loaded = sorted(m.rsplit(".", 1)[-1] for m in sys.modules if m.startswith("pytest_kind_audit."))
    print(json.dumps({{"code": int(code), "loaded": loaded, "yaml": "yaml" in sys.modules}}))
    """
)


def probe(tmp_path: Path, *args: str) -> dict[str, object]:
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert 1 + 1 == 2\n")
    # Only this plugin: another one installed here may import PyYAML itself.
    env = {"PATH": "/usr/bin:/bin", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    source = PROBE.format(args=", ".join(repr(a) for a in args))
    out = subprocess.run(
        [sys.executable, "-c", source], cwd=tmp_path, env=env, check=False, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("args", [["--co", "test_plain.py"], ["test_plain.py"]], ids=["collect", "plain-test"])
def test_a_run_without_a_cluster_loads_no_core(tmp_path: Path, args: list[str]) -> None:
    result = probe(tmp_path, *args)
    assert result["code"] == 0
    assert [m for m in CORE if m in result["loaded"]] == []  # type: ignore[operator]
    assert result["yaml"] is False


def test_the_package_still_offers_every_public_name() -> None:
    code = textwrap.dedent(
        """
        import pytest_kind_audit as p
        missing = [n for n in p.__all__ if not hasattr(p, n)]
        from pytest_kind_audit import AuditedCluster, assert_audited, __version__
        assert AuditedCluster.__module__ == "pytest_kind_audit.cluster", AuditedCluster.__module__
        assert set(p.__all__) <= set(dir(p))
        try:
            p.no_such_name
        except AttributeError as exc:
            print(missing, __version__, exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    missing, version, error = out.stdout.split(" ", 2)
    assert missing == "[]"
    assert version.count(".") == 2
    assert error.strip() == "module 'pytest_kind_audit' has no attribute 'no_such_name'"
