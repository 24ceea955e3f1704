"""RBAC objects as the authorizer reads them: rules, who a binding grants them to, and whether a rule allows a
request (k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac: ``RuleAllows``, ``appliesTo``). No pytest.

A request here is what the authorizer was asked (``Request``), taken from an audit event's URL, not from its
``objectRef`` alone: the audit layer fills ``objectRef.name`` of a create from the request body, a name the
authorizer never saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from .events import AuditEvent
from .exceptions import RbacError

__all__ = [
    "Binding",
    "Grant",
    "Request",
    "Rule",
    "load_rbac",
    "request_of",
    "service_account_user",
]

RBAC_GROUP = "rbac.authorization.k8s.io"
ROLE_KINDS = ("Role", "ClusterRole")
BINDING_KINDS = ("RoleBinding", "ClusterRoleBinding")
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True, order=True)
class Request:
    """One authorization check. ``name`` only where the authorizer saw one (the URL or a ``metadata.name``
    field selector of a list or watch); ``path`` only for non-resource requests (``/healthz``, ``/apis``)."""

    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def is_resource(self) -> bool:
        return not self.path

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def describe(self) -> str:
        if not self.is_resource:
            return f"{self.verb} {self.path}"
        group = f".{self.api_group}" if self.api_group else ""
        where = f" in {self.namespace}" if self.namespace else " (cluster-wide)"
        name = f" {self.name}" if self.name else ""
        return f"{self.verb} {self.full_resource}{group}{name}{where}"


@dataclass(frozen=True)
class Rule:
    """A PolicyRule. Empty ``resource_names`` means any name."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        def strings(key: str) -> tuple[str, ...]:
            value = data.get(key) or ()
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise RbacError(f"rule field {key!r} must be a list of strings, got {value!r}")
            return tuple(value)

        return cls(
            strings("verbs"),
            strings("apiGroups"),
            strings("resources"),
            strings("resourceNames"),
            strings("nonResourceURLs"),
        )

    def to_dict(self) -> dict[str, Any]:
        if self.non_resource_urls:
            return {"nonResourceURLs": list(self.non_resource_urls), "verbs": list(self.verbs)}
        out: dict[str, Any] = {"apiGroups": list(self.api_groups), "resources": list(self.resources)}
        if self.resource_names:
            out["resourceNames"] = list(self.resource_names)
        out["verbs"] = list(self.verbs)
        return out

    def allows(self, request: Request) -> bool:
        if not _matches(self.verbs, request.verb):
            return False
        if not request.is_resource:
            return any(u == "*" or u == request.path or (u.endswith("*") and request.path.startswith(u[:-1]))
                       for u in self.non_resource_urls)  # fmt: skip
        return (
            _matches(self.api_groups, request.api_group)
            and _resource_matches(self.resources, request)
            and (not self.resource_names or request.name in self.resource_names)
        )

    def describe(self) -> str:
        return _flow(self.to_dict())


def _matches(allowed: Sequence[str], value: str) -> bool:
    return "*" in allowed or value in allowed


def _resource_matches(allowed: Sequence[str], request: Request) -> bool:
    combined = request.full_resource
    for r in allowed:
        if r == "*" or r == combined:
            return True
        if request.subresource and r == f"*/{request.subresource}":
            return True
    return False


@dataclass(frozen=True)
class Subject:
    kind: str  # User, Group or ServiceAccount
    name: str
    namespace: str = ""

    def covers(self, user: str, groups: Iterable[str]) -> bool:
        if self.kind == "User":
            return self.name == user
        if self.kind == "Group":
            return self.name in groups
        return self.kind == "ServiceAccount" and user == service_account_user(self.namespace, self.name)


@dataclass(frozen=True)
class Grant:
    """A rule and where it applies: ``namespace`` ``""`` for a ClusterRoleBinding (everywhere), and what
    granted it (``ClusterRoleBinding/x -> ClusterRole/y``)."""

    rule: Rule
    namespace: str
    source: str

    def allows(self, request: Request) -> bool:
        if self.namespace and (not request.is_resource or request.namespace != self.namespace):
            return False
        return self.rule.allows(request)


@dataclass(frozen=True)
class Binding:
    kind: str
    name: str
    namespace: str
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...] = field(default=())


@dataclass
class RbacObjects:
    """Roles and bindings, read from manifests or a live cluster."""

    roles: dict[tuple[str, str, str], tuple[Rule, ...]] = field(default_factory=dict)  # (kind, namespace, name)
    bindings: list[Binding] = field(default_factory=list)

    def add(self, doc: Mapping[str, Any], where: str) -> None:
        kind = doc.get("kind")
        api_version = str(doc.get("apiVersion", ""))
        meta = doc.get("metadata") or {}
        name, namespace = str(meta.get("name", "")), str(meta.get("namespace", "") or "")
        if kind in ("List", "RoleList", "ClusterRoleList", "RoleBindingList", "ClusterRoleBindingList"):
            for i, item in enumerate(doc.get("items") or ()):
                self.add(item, f"{where} item {i + 1}")
            return
        if kind not in ROLE_KINDS + BINDING_KINDS or not api_version.startswith(RBAC_GROUP + "/"):
            raise RbacError(
                f"{where} is not an RBAC object (kind {kind!r}, apiVersion {api_version!r}): expected one of "
                f"{', '.join(ROLE_KINDS + BINDING_KINDS)} in {RBAC_GROUP}/v1"
            )
        if not name:
            raise RbacError(f"{where}: {kind} has no metadata.name")
        namespace = "" if kind.startswith("Cluster") else namespace
        try:
            if kind in ROLE_KINDS:
                self.roles[(kind, namespace, name)] = tuple(Rule.from_dict(r) for r in doc.get("rules") or ())
                return
            ref = doc.get("roleRef") or {}
            subjects = tuple(
                Subject(str(s["kind"]), str(s["name"]), str(s.get("namespace") or namespace))
                for s in doc.get("subjects") or ()
            )
        except (RbacError, KeyError, TypeError, AttributeError) as exc:
            raise RbacError(f"{where}: {kind} {name!r} is malformed: {exc}") from None
        self.bindings.append(
            Binding(kind, name, namespace, str(ref.get("kind", "")), str(ref.get("name", "")), subjects)
        )

    def grants_for(self, user: str, groups: Iterable[str], *, groups_only: bool = False) -> list[Grant]:
        """Every rule bound to ``user`` or one of ``groups`` (only via the groups with ``groups_only``)."""
        groups = tuple(groups)
        out: list[Grant] = []
        for b in self.bindings:
            if not any(s.covers(user, groups) and not (groups_only and s.kind != "Group") for s in b.subjects):
                continue
            role_ns = "" if b.role_kind == "ClusterRole" else b.namespace
            rules = self.roles.get((b.role_kind, role_ns, b.role_name), ())
            source = (
                f"{b.kind}/{b.name}"
                + (f" in {b.namespace}" if b.namespace else "")
                + f" -> {b.role_kind}/{b.role_name}"
            )
            out.extend(Grant(rule, b.namespace, source) for rule in rules)
        return out


def service_account_user(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def binding_subject(user: str) -> dict[str, str]:
    """The subject entry of a binding to ``user`` (a ServiceAccount's user name becomes a ServiceAccount)."""
    if user.startswith(SA_PREFIX):
        namespace, _, name = user[len(SA_PREFIX) :].partition(":")
        return {"kind": "ServiceAccount", "name": name, "namespace": namespace}
    return {"apiGroup": RBAC_GROUP, "kind": "User", "name": user}


def role_and_binding(
    kind: str, name: str, namespace: str, rules: Iterable[Rule], user: str, binding_name: str | None = None
) -> list[dict[str, Any]]:
    """A Role (``namespace`` set) or ClusterRole and its binding to ``user``, as manifests for kubectl apply."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace} if namespace else {"name": name}
    binding_meta = dict(meta, name=binding_name or name)
    return [
        {"apiVersion": f"{RBAC_GROUP}/v1", "kind": kind, "metadata": meta, "rules": [r.to_dict() for r in rules]},
        {"apiVersion": f"{RBAC_GROUP}/v1", "kind": kind + "Binding", "metadata": binding_meta,
         "roleRef": {"apiGroup": RBAC_GROUP, "kind": kind, "name": name}, "subjects": [binding_subject(user)]},
    ]  # fmt: skip


def scoped_roles(name: str, scopes: Mapping[str, Iterable[Rule]], user: str) -> list[dict[str, Any]]:
    """One Role per namespace (the ``""`` scope: a ClusterRole), each bound to ``user``."""
    out: list[dict[str, Any]] = []
    for ns, rules in scopes.items():
        out += role_and_binding("Role" if ns else "ClusterRole", name, ns, rules, user)
    return out


def service_account_groups(user: str) -> tuple[str, ...]:
    """The groups the API server gives a ServiceAccount's token, or () for other users."""
    if not user.startswith(SA_PREFIX):
        return ()
    namespace = user[len(SA_PREFIX) :].split(":", 1)[0]
    return ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated")


def load_rbac(
    sources: Iterable[Mapping[str, Any] | str | Path], objects: RbacObjects | None = None, *, label: str | None = None
) -> RbacObjects:
    """Roles and bindings from dicts or YAML files (several documents, ``List`` kinds too)."""
    objects = objects if objects is not None else RbacObjects()
    for n, source in enumerate(sources, 1):
        if isinstance(source, Mapping):
            objects.add(source, label or f"manifest {n}")
            continue
        path = Path(source)
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except (OSError, yaml.YAMLError) as exc:
            raise RbacError(f"cannot read RBAC manifests from {path}: {str(exc).splitlines()[0]}") from None
        for i, doc in enumerate(d for d in docs if d is not None):
            if not isinstance(doc, Mapping):
                raise RbacError(f"{path} document {i + 1} is not a mapping")
            objects.add(doc, f"{path} document {i + 1}")
    return objects


# -- requests from audit events --------------------------------------------------------------------------------


def request_of(event: AuditEvent) -> Request | None:
    """What the authorizer was asked for this event's request; None when the event holds too little to say."""
    verb = event.verb
    if not verb:
        return None
    uri = urlsplit(event.request_uri)
    ref = event.object_ref
    if ref is None or not ref.resource:
        return Request(verb, path=uri.path or "/") if uri.path else None
    name = _name_in_path(uri.path, ref.resource, ref.subresource)
    if name is None:  # a URL we cannot read (truncated log): trust objectRef, except a create's body name
        name = "" if verb == "create" and not ref.subresource else ref.name
    if not name and verb in ("list", "watch"):
        name = _field_selector_name(uri.query)
    return Request(verb, ref.api_group, ref.resource, ref.subresource, ref.namespace, name)


def _name_in_path(path: str, resource: str, subresource: str) -> str | None:
    """The name segment after the resource in an /api or /apis URL, "" when none, None when unreadable."""
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        return None
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if rest[:1] == ["watch"]:  # the old /watch/ prefix
        rest = rest[1:]
    if rest[:1] == ["namespaces"] and len(rest) >= 3 and resource != "namespaces":  # namespaces/NS/resource/...
        rest = rest[2:]
    if not rest or rest[0] != resource:
        return None
    return rest[1] if len(rest) >= 2 else ""


def _field_selector_name(query: str) -> str:
    for selector in parse_qs(query).get("fieldSelector", ()):
        for requirement in selector.split(","):
            for op in ("==", "="):
                key, sep, value = requirement.partition(op)
                if sep and key.strip() == "metadata.name" and not key.endswith("!"):
                    return value.strip()
    return ""


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1000, sort_keys=False).strip()
