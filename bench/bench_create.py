"""What the plugin adds around kind, as paired runs on the same machine, same node image, same config.

1. Fresh cluster: a whole `pytest` run of one test that uses `audited_cluster` (start to exit: creation,
   the test, deletion) against bare `kind create cluster --config <the same config>` (no --wait, as the plugin) plus
   `kind delete cluster`, alternating which goes first, each after a `sync`; medians over the pairs, and the
   median of the pairs' ratios.
2. Reused cluster: a one-test `pytest --kind-audit-reuse-cluster` run against a bare `pytest --co` of the
   same file, alternating, medians.
3. Where a fresh run's time goes: one more fresh run with a conftest.py that times each stage (not part of
   the pairs above, whose runs carry no instrumentation).

Run: PATH=$PWD/bin:$PATH PYTEST_KIND_AUDIT_IMAGE=kind-audit-ci/node:v1.34.4-3 python bench/bench_create.py [PAIRS]
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

# The test itself does nothing: what is timed is the time to the first test, and the deletion after it.
ONE_TEST = "def test_one(audited_cluster):\n    assert audited_cluster.name\n"

# Wraps the plugin's stages with timers; each line of the log is "<stage> <start> <seconds>". (Its imports load
# the core at start-up, which the plugin itself defers to the first test that needs a cluster.)
STAGES_CONFTEST = """
import os, time
from pytest_kind_audit import _commands, cluster, environment, provision

LOG = os.environ["BENCH_STAGES_LOG"]

def note(stage, start):
    with open(LOG, "a") as f:
        f.write(f"{stage.replace(' ', '_')} {start} {time.time() - start}\\n")

note("startup", float(os.environ["BENCH_STARTED"]))

def timed(owner, attr, stage=None):
    inner = getattr(owner, attr)
    def wrapper(*args, **kwargs):
        start = time.time()
        try:
            return inner(*args, **kwargs)
        finally:
            label = stage or attr
            if stage == "command":
                argv = args[0]
                base = os.path.basename(argv[0])
                label = base if base == "kubectl" else " ".join([base, *argv[1:3]])
            note(label, start)
    setattr(owner, attr, wrapper)

timed(_commands, "run", "command")
timed(environment, "check_environment")
timed(provision, "reap_stale")
timed(cluster.AuditedCluster, "wait_for_audit_log")
timed(provision, "obtain_cluster")
timed(provision, "finish_run")
"""


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
        # Python as users run it: with its bytecode cache (a machine with PYTHONDONTWRITEBYTECODE set compiles
        # every module of pytest, its plugins and this one again at each start, and pytest rewrites the
        # plugins' asserts again: about 0.5 s a run). One collection first fills the cache.
        run_env = {**os.environ, "PYTEST_ADDOPTS": "", "PYTEST_KIND_AUDIT_STATE_DIR": str(work / "state")}
        run_env.pop("PYTHONDONTWRITEBYTECODE", None)
        timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--co", "test_one.py"], work, run_env)
        plugin, bare = [], []
        kubeconfig = str(work / "kubeconfig")
        for i in range(pairs):
            bare_name, plugin_name = f"bc{i}-" + secrets.token_hex(3), f"pc{i}-" + secrets.token_hex(3)
            bare_create = [kind, "create", "cluster", "--name", bare_name, "--config", str(config_path),
                           "--image", image, "--kubeconfig", kubeconfig]  # fmt: skip
            bare_delete = [kind, "delete", "cluster", "--name", bare_name, "--kubeconfig", kubeconfig]
            plugin_run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--kind-audit-require",
                          f"--kind-audit-cluster-name={plugin_name}", "test_one.py"]  # fmt: skip
            # Alternating which side goes first (ABBA), so neither always follows the other's deletion.
            for side in ("bare", "plugin") if i % 2 == 0 else ("plugin", "bare"):
                os.sync()  # the previous cluster's writes flushed before the clock starts, for both sides alike
                if side == "bare":
                    bare.append(timed(bare_create, work) + timed(bare_delete, work))
                else:
                    plugin.append(timed(plugin_run, work, run_env))
            print(f"  pair {i + 1}: bare kind {bare[-1]:.1f}s, plugin run {plugin[-1]:.1f}s, "
                  f"ratio {plugin[-1] / bare[-1]:.3f}", flush=True)  # fmt: skip
        ratios = [p / b for p, b in zip(plugin, bare, strict=True)]
        print(
            f"fresh cluster, medians of {pairs} pairs: plugin run {statistics.median(plugin):.1f}s, bare kind create"
            f"+delete {statistics.median(bare):.1f}s, ratio {statistics.median(plugin) / statistics.median(bare):.3f}"
            f" (median of the pair ratios {statistics.median(ratios):.3f}; sums {sum(plugin) / sum(bare):.3f})"
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
        stages(work, kind, run_env)


def stages(work: Path, kind: str, run_env: dict[str, str]) -> None:
    """One instrumented fresh run: each stage's seconds, and what is left besides kind (and any kubectl)."""
    staged = work / "staged"
    staged.mkdir()
    (staged / "test_one.py").write_text(ONE_TEST)
    (staged / "conftest.py").write_text(STAGES_CONFTEST)
    log = staged / "stages.log"
    name = "bs-" + secrets.token_hex(3)
    started = time.time()
    env = {**run_env, "BENCH_STAGES_LOG": str(log), "BENCH_STARTED": repr(started)}
    try:
        total = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--kind-audit-require",
                       f"--kind-audit-cluster-name={name}", "test_one.py"], staged, env)  # fmt: skip
    finally:
        delete_cluster(kind, name)
    rows = [line.split() for line in log.read_text().splitlines()]
    print(f"one instrumented fresh run, {total:.2f}s (stages nest: obtain_cluster holds kind create):")
    for stage, start, seconds in rows:
        print(f"  {stage:<28} at {float(start) - started:6.2f}s  {float(seconds):6.2f}s")
    kind_and_test = sum(float(s) for stage, _, s in rows if stage.split("_")[0] in ("kind", "kubectl")
                        and "version" not in stage)  # fmt: skip
    print(f"  besides kind create/delete (and any kubectl): {total - kind_and_test:.2f}s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
