"""Least privilege from the audit trail: the smallest RBAC rules that allow exactly the requests a subject made
and the authorizer allowed, and the comparison of what a subject is granted with what it did. No pytest.

Semantics (where audit2rbac differs, the README says why):
* allowed or denied is the authorizer's ``authorization.k8s.io/decision`` annotation, not the response code (an
  admission rejection is a 403 that was authorized); only events without any annotation (logs from before
  Kubernetes 1.11) fall back to the code, and the result says so;
* verbs as used, never widened; ``resourceNames`` wherever the authorizer saw a name (the URL, a subresource
  create, a ``metadata.name`` field selector of a list or watch), never for a plain create;
* one Role per namespace, one ClusterRole for cluster-scoped and all-namespace requests and ``nonResourceURLs``;
* requests the subject's groups are already granted (discovery, basic-user, ...) are left out.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .events import AuditEvent
from .exceptions import RbacError
from .rbac import (
    Grant,
    RbacObjects,
    Request,
    Rule,
    load_rbac,
    request_of,
    scoped_roles,
    service_account_groups,
)

__all__ = ["PrivilegeReport", "RbacPlan", "SubjectRbac", "compare_privilege", "default_bindings", "derive_rbac"]

DECISION = "authorization.k8s.io/decision"

# Kubernetes' bootstrap roles for every authenticated user and every ServiceAccount (plugin/pkg/auth/authorizer/
# rbac/bootstrappolicy, unchanged in substance from 1.14 to 1.37). Used only where no live cluster can be asked.
_DEFAULT_BINDINGS = """
- {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, metadata: {name: "system:discovery"},
   rules: [{nonResourceURLs: [/api, /api/*, /apis, /apis/*, /healthz, /livez, /openapi, /openapi/*, /readyz,
            /version, /version/], verbs: [get]}]}
- {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, metadata: {name: "system:basic-user"},
   rules: [{apiGroups: [authorization.k8s.io], resources: [selfsubjectaccessreviews, selfsubjectrulesreviews],
            verbs: [create]},
           {apiGroups: [authentication.k8s.io], resources: [selfsubjectreviews], verbs: [create]}]}
- {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, metadata: {name: "system:public-info-viewer"},
   rules: [{nonResourceURLs: [/healthz, /livez, /readyz, /version, /version/], verbs: [get]}]}
- {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole,
   metadata: {name: "system:service-account-issuer-discovery"},
   rules: [{nonResourceURLs: [/.well-known/openid-configuration, /.well-known/openid-configuration/,
            /openid/v1/jwks, /openid/v1/jwks/], verbs: [get]}]}
- {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRoleBinding, metadata: {name: "system:discovery"},
   roleRef: {kind: ClusterRole, name: "system:discovery"}, subjects: [{kind: Group, name: "system:authenticated"}]}
- {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRoleBinding, metadata: {name: "system:basic-user"},
   roleRef: {kind: ClusterRole, name: "system:basic-user"}, subjects: [{kind: Group, name: "system:authenticated"}]}
- {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRoleBinding, metadata: {name: "system:public-info-viewer"},
   roleRef: {kind: ClusterRole, name: "system:public-info-viewer"},
   subjects: [{kind: Group, name: "system:authenticated"}, {kind: Group, name: "system:unauthenticated"}]}
- {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRoleBinding,
   metadata: {name: "system:service-account-issuer-discovery"},
   roleRef: {kind: ClusterRole, name: "system:service-account-issuer-discovery"},
   subjects: [{kind: Group, name: "system:serviceaccounts"}]}
"""


def default_bindings() -> RbacObjects:
    """Kubernetes' default grants to ``system:authenticated`` and ``system:serviceaccounts``: the assumption
    made when no cluster's live bindings are given."""
    return load_rbac(yaml.safe_load(_DEFAULT_BINDINGS))


@dataclass
class SubjectRbac:
    """What one subject did, split the authorizer's way, and the rules that allow exactly what was allowed."""

    user: str
    groups: tuple[str, ...]
    allowed: dict[Request, list[AuditEvent]] = field(default_factory=dict)
    denied: dict[Request, list[AuditEvent]] = field(default_factory=dict)
    already_granted: dict[Request, str] = field(default_factory=dict)  # request -> the grant that covers it
    undecided: int = 0  # requests with no decision to go by (rejected before authorization, RequestReceived only)
    assumed_from_code: int = 0

    @property
    def needed(self) -> list[Request]:
        return sorted(r for r in self.allowed if r not in self.already_granted)

    def rules(self) -> dict[str, tuple[Rule, ...]]:
        """Rules per namespace; ``""`` holds the ClusterRole's."""
        scoped: dict[str, list[Request]] = defaultdict(list)
        for r in self.needed:
            scoped[r.namespace if r.is_resource else ""].append(r)
        return {ns: build_rules(reqs) for ns, reqs in sorted(scoped.items())}

    def manifests(self, name: str | None = None) -> list[dict[str, Any]]:
        """Roles, ClusterRole and their bindings to this subject, ready for ``kubectl apply``."""
        return scoped_roles(name or "kind-audit:" + re.sub(r"[/%]", "-", self.user), self.rules(), self.user)


@dataclass
class RbacPlan:
    """The derivation for one or several subjects."""

    subjects: dict[str, SubjectRbac]
    assumptions: list[str]

    def __getitem__(self, user: str) -> SubjectRbac:
        return self.subjects[user]

    def manifests(self) -> list[dict[str, Any]]:
        return [m for s in self.subjects.values() for m in s.manifests()]

    def to_yaml(self) -> str:
        """The manifests as one YAML stream, headed by comments: what was assumed and what was denied."""
        lines = [f"# {a}" for a in self.assumptions]
        for s in self.subjects.values():
            counted = f"{len(s.allowed)} distinct allowed requests, {len(s.already_granted)} already granted"
            lines.append(f"# {s.user}: {counted}, {len(s.denied)} denied")
            lines += [f"#   attempted, denied: {r.describe()}" for r in sorted(s.denied)]
        body = yaml.safe_dump_all(self.manifests(), sort_keys=False, default_flow_style=False)
        return "\n".join(lines) + "\n" + body


def derive_rbac(
    events: Iterable[AuditEvent],
    users: str | Sequence[str],
    *,
    existing: RbacObjects | None = None,
) -> RbacPlan:
    """The smallest Roles and ClusterRoles that allow exactly what each of ``users`` did and was allowed.

    ``existing`` is the cluster's live RBAC (what the subjects' groups are granted is left out); without it,
    Kubernetes' default grants to authenticated users and ServiceAccounts are assumed.
    """
    wanted = [users] if isinstance(users, str) else list(users)
    assumptions: list[str] = []
    if existing is None:
        existing = default_bindings()
        assumptions.append(
            "no live cluster: assumed Kubernetes' default bindings (system:discovery, system:basic-user, "
            "system:public-info-viewer, system:service-account-issuer-discovery) and nothing else"
        )
    found: dict[str, SubjectRbac] = {}
    seen: set[str] = set()
    wanted_set = set(wanted)
    decided: set[tuple[str, str]] = set()
    groups_seen: set[tuple[str, tuple[str, ...]]] = set()
    # A log repeats the same requests: the URL is parsed once per distinct (verb, URL, objectRef).
    requests: dict[tuple[str, str, object], Request | None] = {}
    for e in events:
        user = e.effective_user
        name = user.username
        if name not in wanted_set:
            if name:
                seen.add(name)
            continue
        s = found.get(name)
        if s is None:
            s = found[name] = SubjectRbac(name, ())
        if (name, user.groups) not in groups_seen:
            groups_seen.add((name, user.groups))
            s.groups = _union(s.groups, user.groups)
        if e.stage == "RequestReceived":
            continue  # no decision yet: a later stage of the same request has it
        key = (name, e.audit_id or str(id(e)))
        if key in decided:
            continue
        decision, assumed = _decision(e)
        if decision is None:
            s.undecided += 1
            continue
        ref = e.object_ref
        cache_key = (e.verb, e.request_uri, ref)
        request = requests[cache_key] if cache_key in requests else requests.setdefault(cache_key, request_of(e))
        if request is None:
            continue
        decided.add(key)
        s.assumed_from_code += assumed
        (s.allowed if decision == "allow" else s.denied).setdefault(request, []).append(e)
    seen.update(found)
    missing = [u for u in wanted if u not in found]
    if missing:
        did = ", ".join(sorted(seen)[:20]) or "nobody"
        raise RbacError(f"no request by {', '.join(missing)} in these events; requests were made by: {did}")
    for s in found.values():
        s.groups = _union(s.groups, _implied_groups(s.user))
        grants = existing.grants_for(s.user, s.groups, groups_only=True)
        for request in s.allowed:
            covering = next((g for g in grants if g.allows(request)), None)
            if covering is not None:
                s.already_granted[request] = covering.source
        if s.assumed_from_code:
            assumptions.append(
                f"{s.user}: {s.assumed_from_code} requests have no authorization annotation (a log from before "
                "Kubernetes 1.11): judged by the response code, 403 as denied"
            )
    return RbacPlan({u: found[u] for u in wanted}, assumptions)


def _decision(e: AuditEvent) -> tuple[str | None, bool]:
    """``allow``/``forbid`` and whether it was inferred from the code; None when there is nothing to go by."""
    decision = e.annotations.get(DECISION)
    if decision in ("allow", "forbid"):
        return decision, False
    if e.annotations or e.stage == "RequestReceived" or e.code is None or e.code == 401:
        return None, False  # rejected before the authorizer ran (authentication, APF, impersonation)
    return ("forbid" if e.code == 403 else "allow"), True


def _implied_groups(user: str) -> tuple[str, ...]:
    groups = service_account_groups(user)
    if user != "system:anonymous":
        groups += ("system:authenticated",)
    return groups


def _union(a: tuple[str, ...], b: Iterable[str]) -> tuple[str, ...]:
    return a + tuple(g for g in b if g not in a)


def build_rules(requests: Iterable[Request]) -> tuple[Rule, ...]:
    """Rules that allow exactly these requests: verbs are merged only where they share the same names (and
    resources only where they share verbs and names), so no merge grants a pair that was not requested."""
    names: dict[tuple[str, str], dict[str, set[str] | None]] = defaultdict(dict)  # (group, res) -> verb -> names
    paths: dict[str, set[str]] = defaultdict(set)
    for r in requests:
        if not r.is_resource:
            paths[r.path].add(r.verb)
            continue
        verbs = names[(r.api_group, r.full_resource)]
        if not r.name:
            verbs[r.verb] = None  # any name
        elif r.verb not in verbs or verbs[r.verb] is not None:
            verbs.setdefault(r.verb, set()).add(r.name)  # type: ignore[union-attr]
    merged: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[str]] = defaultdict(list)
    for (group, resource), verbs in sorted(names.items()):
        by_names: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for verb, used in verbs.items():
            by_names[tuple(sorted(used)) if used is not None else ()].append(verb)
        for used_names, vs in by_names.items():
            merged[(group, tuple(sorted(vs, key=_verb_order)), used_names)].append(resource)
    rules = [Rule(verbs, (group,), tuple(sorted(res)), names_) for (group, verbs, names_), res in merged.items()]
    by_verbs: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for path, path_verbs in sorted(paths.items()):
        by_verbs[tuple(sorted(path_verbs, key=_verb_order))].append(path)
    rules += [Rule(vs, non_resource_urls=tuple(ps)) for vs, ps in by_verbs.items()]
    return tuple(rules)


_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


def _verb_order(verb: str) -> tuple[int, str]:
    return (_VERBS.index(verb) if verb in _VERBS else len(_VERBS), verb)


# -- granted against used -----------------------------------------------------------------------------------


@dataclass
class PrivilegeReport:
    """Granted permissions never used, and requests that were denied, for one subject."""

    user: str
    unused: list[str]
    denied: list[tuple[Request, list[AuditEvent]]]
    used: int

    @property
    def ok(self) -> bool:
        return not self.unused and not self.denied

    def message(self) -> str:
        lines = [f"{self.user} is not least-privileged ({self.used} distinct allowed requests in the window):"]
        if self.unused:
            lines.append(f"granted but never used ({len(self.unused)}):")
            lines += [f"  {u}" for u in self.unused]
        if self.denied:
            lines.append(f"attempted and denied ({len(self.denied)}):")
            for request, evidence in self.denied:
                lines.append(f"  {request.describe()}")
                lines += [f"    {e.summary()}" for e in evidence[:2]]
        return "\n".join(lines)


def compare_privilege(
    granted: Iterable[Grant],
    subject: SubjectRbac,
    *,
    allow_unused: Iterable[str] = (),
) -> PrivilegeReport:
    """Every verb of every granted rule (per API group, resource and URL, wildcards as they are written) that no
    allowed request of ``subject`` used, or used on a few names only while granted on all, minus ``allow_unused``
    entries ("VERB RESOURCE[.GROUP]" or "VERB
    /path", ``*`` matching anything), and every request the authorizer denied."""
    excused = [_excuse(x) for x in allow_unused]
    requests = list(subject.allowed)
    unused: list[str] = []
    for grant in granted:
        for atom, label in _atoms(grant):
            if any(ex(label) for ex in excused):
                continue
            used = [r for r in requests if atom.allows(r)]
            if not used:
                unused.append(f"{label}  ({grant.source})")
            elif not atom.rule.resource_names and all(r.name for r in used):
                # Granted on every name, used on a few: resourceNames would do.
                names = ", ".join(sorted({r.name for r in used}))
                unused.append(f"{label} on any name, used only on {names}  ({grant.source})")
    denied = [(r, subject.denied[r]) for r in sorted(subject.denied)]
    return PrivilegeReport(subject.user, unused, denied, len(requests))


def _atoms(grant: Grant) -> Iterable[tuple[Grant, str]]:
    rule = grant.rule
    where = f" in {grant.namespace}" if grant.namespace else ""
    names = f" named {', '.join(rule.resource_names)}" if rule.resource_names else ""
    for verb in rule.verbs:
        for url in rule.non_resource_urls:
            yield Grant(Rule((verb,), non_resource_urls=(url,)), grant.namespace, grant.source), f"{verb} {url}"
        for group in rule.api_groups:
            for resource in rule.resources:
                atom = Rule((verb,), (group,), (resource,), rule.resource_names)
                dotted = f"{resource}.{group}" if group else resource
                yield Grant(atom, grant.namespace, grant.source), f"{verb} {dotted}{names}{where}"


def _excuse(pattern: str) -> Any:
    parts = pattern.split()
    if len(parts) != 2:
        raise RbacError(f"allow_unused entry {pattern!r} is not 'VERB RESOURCE[.GROUP]' or 'VERB /path'")
    regex = re.compile(r"\s".join(".*" if p == "*" else re.escape(p) for p in parts) + r"(\s.*)?$")
    return regex.match


def roles_as_grants(
    manifests: Iterable[Mapping[str, Any] | str | Path], user: str, groups: Iterable[str] = ()
) -> list[Grant]:
    """Roles and ClusterRoles given as manifests (dicts or YAML files), as if bound to ``user`` (a Role in its
    namespace). Bindings among them must bind ``user`` (or one of ``groups``) and count only where they point."""
    groups = tuple(groups) + _implied_groups(user)
    objects = RbacObjects()
    for n, manifest in enumerate(manifests, 1):
        before = len(objects.bindings)
        load_rbac([manifest], objects, label=f"manifest {n}" if isinstance(manifest, Mapping) else None)
        for b in objects.bindings[before:]:
            if not any(s.covers(user, groups) for s in b.subjects):
                who = ", ".join(f"{s.kind} {s.name}" for s in b.subjects) or "nobody"
                where = f"manifest {n}" if isinstance(manifest, Mapping) else str(manifest)
                raise RbacError(f"{where}: {b.kind} {b.name!r} binds {who}, not {user}")
    if objects.bindings:
        return objects.grants_for(user, groups)
    return [Grant(rule, ns, f"{kind}/{name}") for (kind, ns, name), rules in objects.roles.items() for rule in rules]
