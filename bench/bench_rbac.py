"""Least privilege: what deriving RBAC costs, and what the authorizer check costs.

1. Derivation (offline, no cluster): ``derive_rbac`` for the 10 busiest users of our own kind cluster's
   Request-level log (bench/data, cycled to N events), against a bare pass over the same parsed events that reads
   what any derivation must (each event's effective user name, verb, objectRef and annotations). Both with the
   cyclic GC off, CPU time, taking turns, after one untimed pass that builds the events' lazily made nested
   objects (so neither pays for that); median over repetitions of derive time / bare time.
2. The authorizer check (``--cluster``, a real kind cluster): a ServiceAccount makes 50 distinct requests
   (get of 50 ConfigMaps by name); the derived Role is verified by ``verify_rbac`` (probe identities,
   SubjectAccessReviews): seconds and review calls.

Run: python bench/bench_rbac.py [N] [--repeat R]
     PATH=$PWD/bin:$PATH PYTEST_KIND_AUDIT_IMAGE=kind-audit-ci/node:v1.34.4-3 python bench/bench_rbac.py --cluster
"""

from __future__ import annotations

import argparse
import collections
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _cluster import bench_cluster
from _data import kind_lines

from pytest_kind_audit.events import AuditEvent, parse_lines
from pytest_kind_audit.leastprivilege import default_bindings, derive_rbac


def bare(events: list[AuditEvent]) -> int:
    seen = 0
    for e in events:
        if e.effective_user.username and e.verb and (e.object_ref is not None or e.annotations is not None):
            seen += 1
    return seen


def derivation(n: int, repeat: int) -> None:
    events = parse_lines(kind_lines("Request", n))
    users = [u for u, _ in collections.Counter(e.effective_user.username for e in events).most_common(10)]
    existing = default_bindings()
    bare(events)  # typed events build their nested objects on first read: both variants then read built ones
    ratios, derive_times, bare_times = [], [], []
    gc.disable()
    try:
        for i in range(repeat):
            runs = []
            for which in ("bare", "derive") if i % 2 == 0 else ("derive", "bare"):
                started = time.process_time()
                if which == "bare":
                    bare(events)
                else:
                    derive_rbac(events, users, existing=existing)
                runs.append((which, time.process_time() - started))
            times = dict(runs)
            bare_times.append(times["bare"])
            derive_times.append(times["derive"])
            ratios.append(times["derive"] / times["bare"])
    finally:
        gc.enable()
    plan = derive_rbac(events, users, existing=existing)
    rules = sum(len(r) for s in plan.subjects.values() for r in s.rules().values())
    print(f"bench_rbac derivation: {n} events, {len(users)} users, {rules} rules, {repeat} repetitions (CPU time)")
    print(f"  bare pass   median {statistics.median(bare_times) * 1000:8.1f} ms")
    print(f"  derive_rbac median {statistics.median(derive_times) * 1000:8.1f} ms")
    print(f"  derive / bare: median {statistics.median(ratios):.1f}x (min {min(ratios):.1f}, max {max(ratios):.1f})")


def authorizer_check(distinct: int = 50) -> None:
    with bench_cluster("br") as (cluster, env):
        keeper = cluster.housekeeper
        keeper.kubectl("create", "namespace", "bench")
        names = [f"cm-{i}" for i in range(distinct)]
        keeper.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "namespace": "bench"}}
                      for n in names])  # fmt: skip
        sa = cluster.service_account(namespace="bench")
        sa.bind({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                 "metadata": {"name": "reader", "namespace": "bench"},
                 "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]})  # fmt: skip
        window = cluster.window(label="bench")
        sa.kubectl("get", "configmaps", "-n", "bench", *names, "-o", "name")
        window.close()
        subject = cluster.least_privilege(sa.user, window)[sa.user]
        started = time.perf_counter()
        result = cluster.verify_rbac(subject)
        took = time.perf_counter() - started
        rules = sum(len(r) for r in subject.rules().values())
        print(f"bench_rbac authorizer check: {len(subject.needed)} distinct requests, {rules} rule(s), {env.image}")
        print(f"  verify_rbac: {took:.2f} s, {result.reviews} SubjectAccessReviews, ok={result.ok}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--cluster", action="store_true", help="the authorizer check on a real cluster instead")
    args = parser.parse_args()
    if args.cluster:
        authorizer_check()
    else:
        derivation(args.n, args.repeat)


if __name__ == "__main__":
    main()
