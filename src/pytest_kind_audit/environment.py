"""What a cluster needs before it is created: Docker, the kind binary and the node image with its
Kubernetes version. Checked once; a missing piece is one line naming the fix.

Without an image option the node image is exactly the one the installed kind boots. kind's default is a
``const Image`` compiled into the binary (``pkg/apis/config/defaults/image.go``), pinned by digest
(``kindest/node:v1.34.0@sha256:...``), and no kind command prints it: it is read from the binary's bytes,
with the defaults of the released kinds (``KIND_DEFAULT_IMAGES``) to tell where it starts and as the
answer when the binary cannot be read (a wrapper script). A missing image is pulled here, by the same
reference kind would pull, so its Kubernetes version comes from the image itself before the kind config
is written, and a failed pull is one line with the registry's answer.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import _commands
from .exceptions import CommandError, ConfigError, EnvironmentNotReady
from .kindconfig import KindConfig, Version, kubeadm_api
from .nodes import docker_client, image_id, image_id_of, read_image_file
from .ownership import RecordedCluster, state_dir

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .nodes import DockerClient

__all__ = [
    "KIND_DEFAULT_IMAGES",
    "Environment",
    "ImageReference",
    "binary_identity",
    "check_environment",
    "check_kind_supports",
    "check_pod_network",
    "default_image",
    "find_default_images",
    "manifest_kinds",
    "parse_image_reference",
    "parse_kind_version",
    "recorded_environment",
]

#: kind's default node image per release: the ``const Image`` of ``pkg/apis/config/defaults/image.go``
#: at each tag (read from the Go module proxy's copies of ``sigs.k8s.io/kind``).
KIND_DEFAULT_IMAGES: dict[Version, str] = {
    (0, 20, 0): "kindest/node:v1.27.3@sha256:3966ac761ae0136263ffdb6cfd4db23ef8a83cba8a463690e98317add2c9ba72",
    (0, 21, 0): "kindest/node:v1.29.1@sha256:a0cc28af37cf39b019e2b448c54d1a3f789de32536cb5a5db61a49623e527144",
    (0, 22, 0): "kindest/node:v1.29.2@sha256:51a1434a5397193442f0be2a297b488b6c919ce8a3931be0ce822606ea5ca245",
    (0, 23, 0): "kindest/node:v1.30.0@sha256:047357ac0cfea04663786a612ba1eaba9702bef25227a794b52890dd8bcd692e",
    (0, 24, 0): "kindest/node:v1.31.0@sha256:53df588e04085fd41ae12de0c3fe4c72f7013bba32a20e7325357a1ac94ba865",
    (0, 25, 0): "kindest/node:v1.31.2@sha256:18fbefc20a7113353c7b75b5c869d7145a6abd6269154825872dc59c1329912e",
    (0, 26, 0): "kindest/node:v1.32.0@sha256:c48c62eac5da28cdadcf560d1d8616cfa6783b58f0d94cf63ad1bf49600cb027",
    (0, 27, 0): "kindest/node:v1.32.2@sha256:f226345927d7e348497136874b6d207e0b32cc52154ad8323129352923a3142f",
    (0, 28, 0): "kindest/node:v1.33.1@sha256:8d866994839cd096b3590681c55a6fa4a071fdaf33be7b9660e5697d2ed13002",
    (0, 29, 0): "kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f",
    (0, 30, 0): "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a",
    (0, 31, 0): "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
    (0, 32, 0): "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5",
    (0, 33, 0): "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
}  # fmt: skip

PULL_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Environment:
    """What was found: the kind binary and versions, the node image and its Kubernetes version."""

    kind_binary: str
    kind_version: Version
    #: The image option, passed to kind as ``--image``; empty for kind's default (so the per-node images
    #: of a user's kind config still apply).
    image: str
    kubernetes_version: Version
    cgroup_v1_host: bool
    #: The image the nodes boot from: ``image``, or kind's default reference, digest and all.
    node_image: str = ""
    #: Set when all of this was read from the host record of a running cluster about to be reused.
    recorded: RecordedCluster | None = field(default=None, compare=False, repr=False)


def check_environment(kind_binary: str, image: str) -> Environment:
    """Check Docker, kind and the node image (pulled when missing) before anything is created.

    EnvironmentNotReady when a piece is missing or unusable (kind, Docker, a failed pull); ConfigError when
    this kind cannot run the image's Kubernetes version (checked before any pull)."""
    client = docker_client()
    found = shutil.which(kind_binary)
    if not found:
        raise EnvironmentNotReady(
            f"kind binary {kind_binary!r} not found: install kind (go install sigs.k8s.io/kind@v0.30.0) "
            "or pass --kind-audit-kind-binary"
        )
    kind_version = _kind_version(found)
    node_image = image or default_image(found, kind_version)
    present = image_id(client, node_image)
    if present is None:
        guess = _tag_version(node_image)
        if guess is not None:  # refuse a pair that cannot work before pulling anything
            check_kind_supports(kind_version, guess, node_image)
        _pull(node_image, default=not image, kind_binary=found)
    kubernetes_version = _image_kubernetes_version(client, node_image, present)
    check_kind_supports(kind_version, kubernetes_version, node_image)
    cgroup_v1 = not Path("/sys/fs/cgroup/cgroup.controllers").exists()
    return Environment(found, kind_version, image, kubernetes_version, cgroup_v1, node_image=node_image)


def recorded_environment(kind_binary: str, image: str, recorded: RecordedCluster) -> Environment | None:
    """The environment a running cluster was created with, from its host record, when this run asks for the
    same: the same kind binary, unchanged, and the same image option. No Docker call, no kind process, no
    image look-up: a reused cluster needs none of them. None when anything differs (check in full)."""
    fp = recorded.fingerprint
    found = shutil.which(kind_binary)
    kv, kube = fp.kind_version, fp.kubernetes_version
    if not found or len(kv) != 3 or len(kube) != 3 or fp.image_option != image:
        return None
    try:
        if binary_identity(found) != (fp.kind_binary, fp.kind_binary_id):
            return None
    except OSError:
        return None
    cgroup_v1 = not Path("/sys/fs/cgroup/cgroup.controllers").exists()
    return Environment(found, (kv[0], kv[1], kv[2]), image, (kube[0], kube[1], kube[2]), cgroup_v1,
                       node_image=fp.image, recorded=recorded)  # fmt: skip


def binary_identity(path: str) -> tuple[str, str]:
    """A binary's real path and ``size:mtime``: another or a rebuilt binary differs."""
    real = os.path.realpath(path)
    st = os.stat(real)
    return real, f"{st.st_size}:{st.st_mtime_ns}"


def check_kind_supports(kind_version: Version, kubernetes_version: Version, image: str) -> None:
    """ConfigError, in one line naming both versions and the kind that would do, when this kind cannot
    bring up the image's Kubernetes version."""
    try:
        kubeadm_api(kind_version, kubernetes_version)
    except ConfigError as exc:
        raise ConfigError(f"node image {image} runs Kubernetes v{_fmt(kubernetes_version)}: {exc}") from None


# --- kind --------------------------------------------------------------------------------------------------

_KIND_VERSION = re.compile(r"kind v(\d+)\.(\d+)\.(\d+)(?:[-+.][0-9A-Za-z.+-]*)?(?:\s|$)")


def parse_kind_version(output: str) -> Version:
    """``kind v0.30.0 go1.26.8 linux/amd64`` (the output of ``kind version``) to ``(0, 30, 0)``; ValueError
    for anything else, so a binary that is not kind is not taken for one because it printed a number."""
    text = output.strip()
    m = _KIND_VERSION.match(text)
    if not m:
        raise ValueError(f"printed {text[:80]!r}" if text else "printed nothing")
    return int(m[1]), int(m[2]), int(m[3])


def _kind_version(binary: str) -> Version:
    argv = [binary, "version"]
    try:
        out = _commands.run(argv, timeout=30).stdout
    except CommandError as exc:
        raise EnvironmentNotReady(
            f"{binary} is not a working kind: `{' '.join(argv)}` failed ({_answer(exc.stderr) or exc.returncode}); "
            "pass the kind CLI as --kind-audit-kind-binary"
        ) from None
    try:
        return parse_kind_version(out)
    except ValueError as exc:
        raise EnvironmentNotReady(
            f"{binary} is not kind: `{' '.join(argv)}` {exc}, not 'kind vX.Y.Z ...'; pass the kind CLI as "
            "--kind-audit-kind-binary"
        ) from None


def default_image(kind_binary: str, kind_version: Version) -> str:
    """The node image ``kind create cluster`` uses without ``--image``: the reference compiled into the
    binary, else the known default of that kind release; EnvironmentNotReady when neither is found."""
    known = KIND_DEFAULT_IMAGES.get(kind_version)
    try:
        data = _read_binary(kind_binary)
    except OSError:
        data = b""
    found = find_default_images(data)
    if len(found) == 1:
        return found[0]  # a kind rebuilt with another default differs from the release's: the binary wins
    if known is not None and (not found or known in found):
        return known
    if found:
        raise EnvironmentNotReady(
            f"{kind_binary} (kind v{_fmt(kind_version)}) holds several node image references "
            f"({', '.join(found)}), so its default is unclear: pass --kind-audit-image"
        )
    raise EnvironmentNotReady(
        f"cannot tell the default node image of {kind_binary} (kind v{_fmt(kind_version)}): it holds no "
        "'<repository>:<tag>@sha256:<digest>' reference and is not a kind release this plugin knows; "
        "pass --kind-audit-image"
    )


_binary_cache: dict[tuple[str, int, int], bytes] = {}


def _read_binary(path: str) -> bytes:
    real = os.path.realpath(path)
    st = os.stat(real)
    key = (real, st.st_size, st.st_mtime_ns)
    if key not in _binary_cache:
        _binary_cache.clear()
        _binary_cache[key] = Path(real).read_bytes()
    return _binary_cache[key]


# A digest-pinned reference in a Go binary's string data is found by its digest, then read backwards. Go
# stores strings back to back with no separator, so the characters before it may end the string stored
# before it: where the reference really starts is decided by _reference_start.
_PINNED = re.compile(rb"@sha256:[0-9a-f]{64}")
_NAME_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._/:[]-")
_IPV4_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_TAIL = re.compile(rf"{_IPV4_OCTET}(?:\.{_IPV4_OCTET}){{3}}$")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                     r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?")  # fmt: skip


def find_default_images(data: bytes) -> list[str]:
    """The distinct digest-pinned image references ``<repository>[:<tag>]@sha256:<64 hex>`` in a binary's
    bytes, in order. A stock kind holds exactly one: its default node image."""
    found: list[str] = []
    for m in _PINNED.finditer(data):
        begin = m.start()
        while begin > 0 and data[begin - 1] in _NAME_BYTES and m.start() - begin < 512:
            begin -= 1
        text, digest = data[begin : m.start()].decode("ascii"), m[0][1:].decode("ascii")
        name, tag = text, ""
        colon = text.rfind(":")
        if colon > text.rfind("/") and _TAG.fullmatch(text[colon + 1 :]):
            name, tag = text[:colon], text[colon + 1 :]
        rest = (f":{tag}" if tag else "") + f"@{digest}"
        name = _reference_start(name, rest)
        if name and f"{name}{rest}" not in found:
            found.append(f"{name}{rest}")
    return found


def _reference_start(name: str, rest: str, known: Iterable[str] = KIND_DEFAULT_IMAGES.values()) -> str:
    """The repository name of a reference whose front may carry the end of the string stored before it
    (``rest`` is its ``:tag@digest``). In order: a registry host with a port (``127.0.0.1:5000/...``,
    ``localhost:5000/...``, ``[::1]:5000/...``), starting at the IPv4 address, ``localhost`` or ``[`` it
    ends with (another host name is taken whole); the repository of a released kind's default, when the
    text ends with that whole reference; a ``kindest`` organization; else the whole text. "" when no valid
    repository name is left."""
    parts = name.split("/")
    for i, part in enumerate(parts[:-1]):
        if ":" in part:  # only a registry host carries a port
            host, port = part.rsplit(":", 1)
            ip = _IPV4_TAIL.search(host)
            if ip:
                host = ip[0]
            elif "[" in host:
                host = host[host.rindex("[") :]
            elif host.lower().endswith("localhost"):
                host = "localhost"
            return _valid_name("/".join([f"{host.lstrip('.-_')}:{port}", *parts[i + 1 :]]))
    for ref in known:
        if (name + rest).endswith(ref):
            return ref.split("@", 1)[0].rsplit(":", 1)[0]
    for i, part in enumerate(parts[:-1]):
        if part.endswith("kindest"):
            return _valid_name("/".join(["kindest", *parts[i + 1 :]]))
    return _valid_name(name.lstrip("./:-_"))


def _valid_name(name: str) -> str:
    parts = name.split("/")
    first, *rest = parts
    if rest and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if not _DOMAIN.fullmatch(first):
            return ""
        parts = rest
    return name if parts and all(_PATH_COMPONENT.fullmatch(p) for p in parts) else ""


# --- image references --------------------------------------------------------------------------------------

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}")
#: A kind node image's tag names its Kubernetes version: v1.34.4, or v1.34.4-2 for a rebuild.
_TAG_VERSION = re.compile(r"v(1)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?")
#: /kind/version: v1.34.4, also without the v or the patch.
_FILE_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+][0-9A-Za-z.+-]*)?")


@dataclass(frozen=True)
class ImageReference:
    """An image reference split into repository name (registry host included), tag and digest."""

    name: str
    tag: str = ""
    digest: str = ""

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def tag_version(self) -> Version | None:
        """The Kubernetes version a kind node image's tag names (``v1.34.4``, ``v1.34.4-2``), or None
        (``latest``, ``v2``, no tag). A guess until the image's /kind/version is read."""
        m = _TAG_VERSION.fullmatch(self.tag)
        return (int(m[1]), int(m[2]), int(m[3])) if m else None


def parse_image_reference(reference: str) -> ImageReference:
    """``[host[:port]/]path[:tag][@algo:hex]`` to its parts: the tag is what follows the last ``:`` after the
    last ``/`` and before ``@`` (a registry's port is not a tag, a digest is not a tag); ValueError when
    malformed."""
    rest, at, digest = reference.strip().partition("@")
    if at and not _DIGEST.fullmatch(digest):
        raise ValueError(f"image reference {reference!r}: {digest!r} is not a digest (algorithm:hex)")
    name, tag = rest, ""
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        name, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise ValueError(f"image reference {reference!r}: {tag!r} is not a tag")
    if not name or not _valid_name(name):
        raise ValueError(f"image reference {reference!r}: {name!r} is not a repository name")
    return ImageReference(name, tag, digest)


# --- the image ---------------------------------------------------------------------------------------------


def _tag_version(image: str) -> Version | None:
    try:
        return parse_image_reference(image).tag_version
    except ValueError:  # an image id, or a name Docker will judge
        return None


def _pull(image: str, *, default: bool, kind_binary: str) -> None:
    """``docker pull`` the reference kind would pull itself (the same client, credentials and daemon)."""
    what = f"kind's default node image {image} (of {kind_binary})" if default else f"node image {image!r}"
    try:
        _commands.run(["docker", "pull", image], timeout=PULL_TIMEOUT)
    except CommandError as exc:
        raise EnvironmentNotReady(
            f"{what} is not present and could not be pulled: {_answer(exc.stderr) or f'exit code {exc.returncode}'}"
        ) from None


def _answer(stderr: str) -> str:
    """The last line a command printed to stderr: for ``docker pull``, the registry's answer."""
    return _commands.last_line(stderr)


def _image_kubernetes_version(client: DockerClient, image: str, known_id: str | None = None) -> Version:
    version = _image_fact(client, image, "/kind/version", "version", lambda raw: raw.decode().strip(), known_id)
    m = _FILE_VERSION.fullmatch(version or "")
    if not m:
        raise EnvironmentNotReady(
            f"node image {image!r} has no Kubernetes version in /kind/version: is it a kind node image?"
        )
    return int(m[1]), int(m[2]), int(m[3] or 0)


def _image_fact(
    client: DockerClient, image: str, path: str, fact: str, derive: Callable[[bytes], str], known_id: str | None = None
) -> str | None:
    """What ``derive`` makes of a file of the image; None when the image has no such file. Reading it takes
    a container; the answer is kept by image id (a content hash, so it can never go stale) in the state
    directory, as ``<id>.<fact>``."""
    key = (known_id or image_id_of(client, image)).replace(":", "-")
    cache = state_dir() / "images" / f"{key}.{fact}"
    try:
        return cache.read_text()
    except OSError:
        pass
    raw = read_image_file(client, image, path)
    if raw is None:
        return None
    answer = derive(raw)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(answer)
    os.replace(tmp, cache)
    return answer


# --- the pod network ---------------------------------------------------------------------------------------

#: Where kind reads the default CNI's manifest, from the first control-plane node, when it installs it.
CNI_MANIFEST = "/kind/manifests/default-cni.yaml"
_TOP_LEVEL_KIND = re.compile(r"^kind:[ \t]*[\"']?([A-Za-z]+)", re.MULTILINE)


def manifest_kinds(manifest: str) -> list[str]:
    """The kinds of a multi-document manifest's objects, in order (read by line: kind's manifests are
    templates, not always YAML)."""
    return _TOP_LEVEL_KIND.findall(manifest)


def _kinds_line(manifest: bytes) -> str:
    return " ".join(manifest_kinds(manifest.decode(errors="replace")))


def check_pod_network(config: KindConfig, environment: Environment) -> None:
    """ConfigError, one line naming the image and the fix, when the config asks for worker nodes and kind's
    default CNI would give them no pod network: the node image's default CNI manifest holds no DaemonSet
    (kind's kindnetd is one; a single node needs none). kind installs the manifest of the control-plane
    node's image, so that one is read: the image option, else the node's own ``image:``, else kind's
    default. Nothing is read for a single node, a disabled default CNI, or an image not present yet."""
    if not config.workers or not config.default_cni:
        return
    image = environment.image or config.control_plane_image or environment.node_image
    client = docker_client()
    known_id = image_id(client, image)
    if known_id is None:
        return  # kind pulls it; its manifest is kind's concern then
    kinds = _image_fact(client, image, CNI_MANIFEST, "cni-kinds", _kinds_line, known_id)
    if kinds is not None and "DaemonSet" in kinds.split():
        return
    holds = "is missing" if kinds is None else f"holds no DaemonSet, only {', '.join(kinds.split()) or 'nothing'}"
    raise ConfigError(
        f"the kind config has worker nodes, but node image {image} has no pod network for them: its {CNI_MANIFEST} "
        f"{holds}; use an image whose default CNI is a DaemonSet (kind's kindnetd, or flannel as in "
        "pytest-kind-audit's offline images), or set networking.disableDefaultCNI: true and install your own CNI"
    )


def _fmt(v: Version) -> str:
    return ".".join(map(str, v))
