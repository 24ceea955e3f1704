"""What the plugin adds around kind, as paired runs on the same machine, same node image, same config.

1. Fresh cluster: a whole `pytest` run of one test that uses `audited_cluster` (start to exit: creation,
   the test, deletion) against bare `kind create cluster --config <the same config> --wait 180s` plus
   `kind delete cluster`, alternating, medians over the pairs.
2. Reused cluster: a one-test `pytest --kind-audit-reuse-cluster` run against a bare `pytest --co` of the
   same file, alternating, medians.

Run: PATH=$PWD/bin:$PATH PYTEST_KIND_AUDIT_IMAGE=kind-audit-ci/node:v1.34.4-2 python bench/bench_create.py [PAIRS]
"""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_kind_audit import AuditPolicy, KindConfig, check_environment
from pytest_kind_audit.deletion import delete_cluster

ONE_TEST = "def test_one(audited_cluster):\n    audited_cluster.kubectl('get', 'namespaces')\n"


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main(pairs: int) -> None:
    kind, image = os.environ.get("PYTEST_KIND_AUDIT_KIND_BINARY", "kind"), os.environ["PYTEST_KIND_AUDIT_IMAGE"]
    env = check_environment(kind, image)
    with tempfile.TemporaryDirectory(prefix="bench-create-") as tmp:
        work = Path(tmp)
        (work / "test_one.py").write_text(ONE_TEST)
        (work / "pytest.ini").write_text("[pytest]\n")
        bare_config = KindConfig.build(policy_file=work / "audit-policy.yaml", kind_version=env.kind_version,
                                       kubernetes_version=env.kubernetes_version,
                                       cgroup_v1_host=env.cgroup_v1_host)  # fmt: skip
        AuditPolicy.for_level("Metadata").write(work / "audit-policy.yaml")
        config_path = bare_config.write(work / "kind-config.yaml")
        run_env = {**os.environ, "PYTEST_ADDOPTS": "", "PYTEST_KIND_AUDIT_STATE_DIR": str(work / "state")}
        plugin, bare = [], []
        for i in range(pairs):
            name = f"bc{i}-" + secrets.token_hex(3)
            bare.append(
                timed(
                    [
                        kind,
                        "create",
                        "cluster",
                        "--name",
                        name,
                        "--config",
                        str(config_path),
                        "--image",
                        image,
                        "--kubeconfig",
                        str(work / "kubeconfig"),
                        "--wait",
                        "180s",
                    ],
                    work,
                )
                + timed([kind, "delete", "cluster", "--name", name, "--kubeconfig", str(work / "kubeconfig")], work)
            )
            name = f"pc{i}-" + secrets.token_hex(3)
            plugin.append(timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--kind-audit-require",
                                 f"--kind-audit-cluster-name={name}", "test_one.py"], work, run_env))  # fmt: skip
            print(f"  pair {i + 1}: bare kind {bare[-1]:.1f}s, plugin run {plugin[-1]:.1f}s", flush=True)
        print(
            f"fresh cluster, medians of {pairs} pairs: plugin run {statistics.median(plugin):.1f}s, bare kind create"
            f"+delete {statistics.median(bare):.1f}s, ratio {statistics.median(plugin) / statistics.median(bare):.3f}"
        )

        name = "br-" + secrets.token_hex(3)
        reuse = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--kind-audit-require",
                 "--kind-audit-reuse-cluster", f"--kind-audit-cluster-name={name}", "test_one.py"]  # fmt: skip
        co = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--co", "test_one.py"]
        try:
            timed(reuse, work, run_env)  # creates and keeps it
            reused, collect = [], []
            for _ in range(max(5, pairs * 2)):
                reused.append(timed(reuse, work, run_env))
                collect.append(timed(co, work, run_env))
            print(
                f"reused cluster, medians of {len(reused)} pairs: one-test run {statistics.median(reused):.2f}s, "
                f"bare pytest --co {statistics.median(collect):.2f}s, "
                f"ratio {statistics.median(reused) / statistics.median(collect):.2f}"
            )
        finally:
            print(f"  {name}: {delete_cluster(kind, name).describe()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
