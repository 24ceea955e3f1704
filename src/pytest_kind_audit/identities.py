"""Identities that are not cluster-admin: a ServiceAccount with a short-lived token, or a user with groups by a
client certificate, each with its own kubeconfig (mode 0600, never ~/.kube), bound to given Roles and
ClusterRoles, and asked about by SubjectAccessReview. No pytest.

Setting them up (the account, its token, the roles, the bindings, the reviews) is done by the plugin's own
housekeeping identity, whose requests no test window holds: a test's window shows the test's requests only.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import _commands
from .exceptions import ClusterError, RbacError
from .private_files import write_private
from .rbac import (
    Request,
    Rule,
    load_rbac,
    role_and_binding,
    service_account_groups,
    service_account_user,
)

__all__ = ["HOUSEKEEPING_USER", "Housekeeper", "Identity"]

#: The plugin's own admin identity for setting up identities and asking the authorizer; left out of windows.
HOUSEKEEPING_USER = "kind-audit-housekeeping"
TOKEN_SECONDS = 3600


def kubectl(kubeconfig: Path, *args: str, input: str | None = None, check: bool = True, timeout: float = 120) -> str:
    """kubectl with ``kubeconfig`` and a discovery cache beside it: nothing under ~/.kube."""
    cache = str(kubeconfig.parent / "kubectl-cache")
    argv = [shutil.which("kubectl") or "kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", cache, *args]
    return _commands.run(argv, input=input, timeout=timeout, check=check).stdout


class Housekeeper:
    """kubectl as the housekeeping identity (a cluster admin by client certificate)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return kubectl(self.kubeconfig, *args, input=input, check=check)

    def apply(self, docs: Sequence[Mapping[str, Any]]) -> None:
        if docs:
            self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(list(docs)))

    def reviews(self, user: str, groups: Sequence[str], requests: Sequence[Request]) -> list[bool]:
        """Whether the authorizer allows each request for ``user`` in ``groups``: SubjectAccessReviews, all
        sent by one kubectl."""
        if not requests:
            return []
        docs = [_review(user, groups, r) for r in requests]
        items = _json_stream(self.kubectl("create", "-o", "json", "-f", "-", input=yaml.safe_dump_all(docs)))
        if len(items) == 1 and items[0].get("kind") == "List":
            items = items[0].get("items", [])
        if len(items) != len(requests):
            raise ClusterError(f"asked {len(requests)} SubjectAccessReviews, got {len(items)} answers")
        return [bool(item.get("status", {}).get("allowed")) for item in items]


def _json_stream(text: str) -> list[dict[str, Any]]:
    """kubectl prints one JSON document per object created, one after the other."""
    decoder, at = json.JSONDecoder(), 0
    out: list[dict[str, Any]] = []
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return out
        value, at = decoder.raw_decode(text, at)
        out.append(value)


def _review(user: str, groups: Sequence[str], r: Request) -> dict[str, Any]:
    spec: dict[str, Any] = {"user": user, "groups": list(groups)}
    if r.is_resource:
        attrs = {"verb": r.verb, "group": r.api_group, "resource": r.resource}
        attrs.update({k: v for k, v in (("subresource", r.subresource), ("namespace", r.namespace),
                                        ("name", r.name)) if v})  # fmt: skip
        spec["resourceAttributes"] = attrs
    else:
        spec["nonResourceAttributes"] = {"verb": r.verb, "path": r.path}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


@dataclass
class Identity:
    """Who a test's own code runs as. ``user`` is the name the audit log shows (``system:serviceaccount:NS:NAME``
    for a ServiceAccount), ``kubeconfig`` a file for ``KUBECONFIG``."""

    user: str
    groups: tuple[str, ...]
    kubeconfig: Path
    housekeeper: Housekeeper
    namespace: str = ""  # a ServiceAccount's

    @property
    def env(self) -> dict[str, str]:
        """Environment for a subprocess that should act as this identity (kubectl's cache beside its kubeconfig:
        nothing under ~/.kube)."""
        return {"KUBECONFIG": str(self.kubeconfig), "KUBECACHEDIR": str(self.kubeconfig.parent / "kubectl-cache")}

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120) -> str:
        """kubectl as this identity (its own kubeconfig and cache; nothing under ~/.kube)."""
        return kubectl(self.kubeconfig, *args, input=input, check=check, timeout=timeout)

    def bind(self, *roles: Mapping[str, Any] | str | Path, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Create the given Roles and ClusterRoles (dicts or YAML files) and bind each to this identity (a Role
        in its namespace, default the ServiceAccount's), then wait until the authorizer allows one request of
        every rule. Returns the objects applied."""
        docs: list[dict[str, Any]] = []
        for n, source in enumerate(roles, 1):
            objects = load_rbac([source], label=f"role {n}")
            if objects.bindings:
                raise RbacError(
                    f"role {n} holds a binding: pass Roles and ClusterRoles, bind() binds them to {self.user}"
                )
            for (kind, namespace, name), rules in objects.roles.items():
                namespace = namespace or (self.namespace if kind == "Role" else "")
                if kind == "Role" and not namespace:
                    raise RbacError(f"Role {name!r} has no namespace and {self.user} is not a ServiceAccount: set one")
                binding = f"kind-audit:{name}:{self.user}"[:253].replace("/", "-")
                docs += role_and_binding(kind, name, namespace, rules, self.user, binding)
        self.housekeeper.apply(docs)
        probes = [p for d in docs if d["kind"] in ("Role", "ClusterRole") for p in _probes(d)]
        wait_until_allowed(self.housekeeper, self.user, self.groups, probes, timeout)
        return docs

    def can(self, verb: str, resource: str = "", *, namespace: str = "", name: str = "", subresource: str = "",
            group: str = "", path: str = "") -> bool:  # fmt: skip
        """Whether the authorizer allows this identity one request (a SubjectAccessReview, by housekeeping)."""
        request = Request(verb, group, resource, subresource, namespace, name, path)
        return self.housekeeper.reviews(self.user, self.groups, [request])[0]


def _probes(doc: Mapping[str, Any]) -> list[Request]:
    """One concrete request per rule that the rule allows (wildcards made concrete)."""
    namespace = doc["metadata"].get("namespace", "")
    out = []
    for raw in doc.get("rules") or ():
        rule = Rule.from_dict(raw)
        verb = next((v for v in rule.verbs if v != "*"), "get")
        if rule.non_resource_urls:
            url = rule.non_resource_urls[0]
            out.append(Request(verb, path=url.rstrip("*") or "/"))
            continue
        group = next((g for g in rule.api_groups if g != "*"), "")
        resource = next((r for r in rule.resources if "*" not in r), "pods")
        res, _, sub = resource.partition("/")
        name = rule.resource_names[0] if rule.resource_names else ""
        out.append(Request(verb, group, res, sub, namespace, name))
    return out


def wait_until_allowed(
    housekeeper: Housekeeper,
    user: str,
    groups: Sequence[str],
    requests: Sequence[Request],
    timeout: float,
    *,
    raise_on_timeout: bool = True,
) -> list[bool]:
    """Poll the authorizer until every request is allowed (its RBAC cache sees new bindings moments later);
    the last answers, or ClusterError at the timeout when ``raise_on_timeout``."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        allowed = housekeeper.reviews(user, groups, requests)
        if all(allowed):
            return allowed
        if time.monotonic() > deadline:
            if not raise_on_timeout:
                return allowed
            missing = [r.describe() for r, ok in zip(requests, allowed, strict=True) if not ok]
            raise ClusterError(f"the authorizer still denies {user} after {timeout:.0f}s: {', '.join(missing)}")
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def make_service_account(
    housekeeper: Housekeeper, server: str, ca_data: str, workdir: Path, name: str | None, namespace: str,
    seconds: int = TOKEN_SECONDS,
) -> Identity:  # fmt: skip
    """A ServiceAccount (created if missing, its namespace too) and a kubeconfig with a TokenRequest token."""
    name = name or f"kind-audit-sa-{secrets.token_hex(4)}"
    housekeeper.apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}},
    ])  # fmt: skip
    token = housekeeper.kubectl("create", "token", name, "-n", namespace, f"--duration={seconds}s").strip()
    user = service_account_user(namespace, name)
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "kind-audit",
        "clusters": [{"name": "kind-audit", "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "kind-audit",
                      "context": {"cluster": "kind-audit", "user": user, "namespace": namespace}}],
    }  # fmt: skip
    path = write_private(workdir / f"kubeconfig-sa-{namespace}-{name}", yaml.safe_dump(config))
    return Identity(user, service_account_groups(user), path, housekeeper, namespace)


def user_groups(groups: Iterable[str]) -> tuple[str, ...]:
    groups = tuple(groups)
    for g in groups:
        if not g or g == "system:masters":
            raise RbacError(f"group {g!r} cannot be given to a test identity (system:masters bypasses RBAC)")
    return (*groups, "system:authenticated")
