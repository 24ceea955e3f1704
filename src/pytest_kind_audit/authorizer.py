"""Derived rules checked by the real authorizer, and a cluster's live RBAC. No pytest.

A derivation is only a claim until the API server agrees: bound to a probe identity, the rules must allow every
request the subject made (SubjectAccessReview with the subject's groups); and each rule, and each verb of a
rule, must be needed: bound without it, a probe is denied at least one of the requests. Every review is sent by
the housekeeping identity, whose requests no test window holds.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .events import AuditEvent
from .identities import Housekeeper, wait_until_allowed
from .leastprivilege import PrivilegeReport, SubjectRbac, compare_privilege, derive_rbac, roles_as_grants
from .rbac import RbacObjects, Request, Rule, load_rbac, scoped_roles

__all__ = ["Verification", "check_least_privilege", "live_rbac", "verify_rbac"]


def live_rbac(housekeeper: Housekeeper) -> RbacObjects:
    """Every Role, ClusterRole and binding in the cluster now."""
    kinds = "clusterroles,clusterrolebindings,roles,rolebindings"
    data = json.loads(housekeeper.kubectl("get", kinds, "--all-namespaces", "-o", "json"))
    return load_rbac([data], label="the cluster's RBAC")


@dataclass
class Verification:
    """What the authorizer said about a subject's derived rules."""

    user: str
    requests: int
    denied_under_derived: list[Request] = field(default_factory=list)
    not_needed: list[str] = field(default_factory=list)  # "rule 2 of Role ns/x" / "verb patch of rule 1 ..."
    reviews: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.denied_under_derived and not self.not_needed

    def message(self) -> str:
        lines = [f"the derived rules for {self.user} do not hold up ({self.reviews} reviews):"]
        lines += [f"  denied although derived: {r.describe()}" for r in self.denied_under_derived]
        lines += [f"  not needed: {n}" for n in self.not_needed]
        return "\n".join(lines)


def verify_rbac(housekeeper: Housekeeper, subject: SubjectRbac, *, timeout: float = 30.0) -> Verification:
    """Bind the derived rules to probe identities (all of them; all but one rule; all but one verb of a rule),
    created together, and ask the authorizer about every request the subject needed under each."""
    started = time.monotonic()
    requests = subject.needed
    result = Verification(subject.user, len(requests))
    if not requests:
        return result
    tag = secrets.token_hex(3)
    scopes = subject.rules()
    probes: dict[str, dict[str, tuple[Rule, ...]]] = {f"kind-audit-probe-{tag}-all": scopes}
    labels: dict[str, str] = {}
    for ns, rules in scopes.items():
        scope = f"Role in {ns}" if ns else "ClusterRole"
        for i, rule in enumerate(rules):
            user = f"kind-audit-probe-{tag}-{len(probes)}"
            probes[user] = {**scopes, ns: rules[:i] + rules[i + 1 :]}
            labels[user] = f"rule {i + 1} of the {scope}: {rule.describe()}"
            for verb in rule.verbs if len(rule.verbs) > 1 else ():
                user = f"kind-audit-probe-{tag}-{len(probes)}"
                fewer = Rule(tuple(v for v in rule.verbs if v != verb), rule.api_groups, rule.resources,
                             rule.resource_names, rule.non_resource_urls)  # fmt: skip
                probes[user] = {**scopes, ns: (*rules[:i], fewer, *rules[i + 1 :])}
                labels[user] = f"verb {verb} of rule {i + 1} of the {scope}: {rule.describe()}"
    docs = [d for user, bound in probes.items() for d in scoped_roles(user, bound, user)]
    housekeeper.apply(docs)
    try:
        groups = subject.groups
        wait = timeout  # the first probe waits for the bindings, made together, to reach the authorizer
        for user, bound in probes.items():
            # Wait until the authorizer sees this probe's bindings: what its rules still allow is allowed. If
            # it never is, the rule model and the authorizer disagree: that is a finding, not an error.
            still = [r for r in requests if any(rule.allows(r) for ns, rs in bound.items() for rule in rs
                                                if not ns or r.namespace == ns)]  # fmt: skip
            answers = wait_until_allowed(housekeeper, user, groups, still, wait, raise_on_timeout=False)
            wait = min(timeout, 5.0)
            result.reviews += len(still)
            for r, ok in zip(still, answers, strict=True):
                if not ok and r not in result.denied_under_derived:
                    result.denied_under_derived.append(r)
            if user.endswith("-all"):
                continue
            left = [r for r in requests if r not in still]
            allowed = housekeeper.reviews(user, groups, left)
            result.reviews += len(left)
            if all(allowed):
                result.not_needed.append(labels[user])
    finally:
        housekeeper.kubectl("delete", "--wait=false", "--ignore-not-found", "-f", "-", input=_dump(docs), check=False)
    result.seconds = time.monotonic() - started
    return result


def _dump(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs)


def check_least_privilege(
    housekeeper: Housekeeper,
    events: Iterable[AuditEvent],
    user: str,
    groups: Iterable[str] = (),
    roles: Iterable[Mapping[str, Any] | str | Path] | None = None,
    *,
    allow_unused: Iterable[str] = (),
) -> PrivilegeReport:
    """Compare what ``user`` may do (``roles`` as manifests, or what is bound to it in the cluster now, not via
    its groups) with what it did in ``events``."""
    live = live_rbac(housekeeper)
    subject = derive_rbac(events, user, existing=live)[user]
    if roles is None:
        granted = live.grants_for(user, (), groups_only=False)
    else:
        granted = roles_as_grants(roles, user, groups)
    return compare_privilege(granted, subject, allow_unused=allow_unused)
