#!/usr/bin/env bash
# Assemble the kind node image offline, the way kind's own builder does (docker run + cp +
# ctr import + commit), from the base image and the binaries built from Go modules.
# Output: the tag $NODE_IMAGE (skipped when it exists). Single control-plane clusters only:
# no kindnetd (a static CNI conflist instead), no CoreDNS or kube-proxy images (and, for now,
# a kubeadm wrapper that skips those two addons: see ci/kubeadm-skip-addons). runc is the one
# built by ci/build-runc.sh, in place of Debian's; so is containerd, for a line that pins
# CONTAINERD_VERSION (ci/build-containerd.sh), else it is Debian's from the base image.
. "$(dirname "$0")/lib.sh"

if image_exists "$NODE_IMAGE"; then log "$NODE_IMAGE present, skipping"; exit 0; fi
USAGE="usage: build-node-image.sh BINARIES_DIR RUNC [CONTAINERD_DIR] (the outputs of ci/build-binaries.sh, ci/build-runc.sh and, for a line that pins CONTAINERD_VERSION, ci/build-containerd.sh)"
BIN=${1:?$USAGE}
RUNC=${2:?$USAGE}
CONTAINERD=${3:-}
image_exists "$BASE_IMAGE" || die "$BASE_IMAGE is missing: run ci/build-base-image.sh first"
for b in kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler etcd crictl pause; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing: run ci/build-binaries.sh first"
done
grep -qx "runc version ${RUNC_VERSION#v}" <<<"$("$RUNC" --version 2>/dev/null)" || die "$RUNC is not runc $RUNC_VERSION: run ci/build-runc.sh first"
if [ -n "$CONTAINERD_VERSION" ]; then
  [ -n "$CONTAINERD" ] || die "$USAGE"
  "$CONTAINERD/containerd" --version 2>/dev/null | grep -q " $CONTAINERD_VERSION\( \|$\)" ||
    die "$CONTAINERD/containerd is not containerd $CONTAINERD_VERSION: run ci/build-containerd.sh first"
fi
# Kubelet 1.35+ refuses cgroup v1 hosts unless told otherwise (failCgroupV1 defaults to true).
MINOR=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
need_space 3000 "$CACHE_DIR"

WORK=$(mktemp -d "$CACHE_DIR/.node.XXXXXX")
BUILDER=kind-audit-build-$$
TMP_TAG=kind-audit-ci/node-building:$$
COMPONENT_TAG=kind-audit-ci/control-plane-layer:$$
PAUSE_TAG=kind-audit-ci/pause-layer:$$
cleanup() {
  docker rm -f -v "$BUILDER" >/dev/null 2>&1 || true
  docker rmi -f "$TMP_TAG" "$COMPONENT_TAG" "$PAUSE_TAG" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The image names kubeadm will ask containerd for: computed, never hard-coded.
component_images() {
  "$BIN/kubeadm" config images list --kubernetes-version "$KUBERNETES_VERSION" > "$WORK/kubeadm-images"
  cat "$WORK/kubeadm-images" >&2
}

make_component_images() {
  local cp=$WORK/cp-rootfs pause=$WORK/pause-rootfs img sandbox
  mkdir -p "$cp/usr/local/bin" "$cp/tmp" "$cp/etc/ssl" "$pause"
  chmod 1777 "$cp/tmp"
  cp "$BIN"/{kube-apiserver,kube-controller-manager,kube-scheduler,etcd} "$cp/usr/local/bin/"
  cp -rL /etc/ssl/certs "$cp/etc/ssl/" 2>/dev/null || true
  tar -C "$cp" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$COMPONENT_TAG" >/dev/null
  cp "$BIN/pause" "$pause/pause"
  tar -C "$pause" -c . | docker import --change 'ENTRYPOINT ["/pause"]' --change 'USER 65535:65535' - "$PAUSE_TAG" >/dev/null
  : > "$WORK/tags"
  while read -r img; do
    case "$img" in
      */kube-apiserver:*|*/kube-controller-manager:*|*/kube-scheduler:*|*/etcd:*) docker tag "$COMPONENT_TAG" "$img"; echo "$img" >> "$WORK/tags" ;;
      */pause:*) docker tag "$PAUSE_TAG" "$img"; echo "$img" >> "$WORK/tags" ;;
      *) log "not preloaded (not needed for the API server): $img" ;;
    esac
  done < "$WORK/kubeadm-images"
  # containerd's sandbox image, which may differ from the pause tag kubeadm lists.
  sandbox=$(docker run --rm --entrypoint cat "$BASE_IMAGE" /etc/containerd/config.toml | awk -F'"' '/sandbox_image/{print $2}')
  if [ -n "$sandbox" ] && ! grep -qx "$sandbox" "$WORK/tags"; then docker tag "$PAUSE_TAG" "$sandbox"; echo "$sandbox" >> "$WORK/tags"; fi
  # shellcheck disable=SC2046
  docker save -o "$WORK/images.tar" $(cat "$WORK/tags")
  # The registry.k8s.io/* tags live on in containerd inside the node, not in the host's Docker.
  xargs docker rmi >/dev/null < "$WORK/tags"
}

assemble() {
  docker run -d --name "$BUILDER" --entrypoint=sleep --security-opt seccomp=unconfined "$BASE_IMAGE" infinity >/dev/null
  # kubeadm.real behind a wrapper that skips the CoreDNS and kube-proxy addons on init
  # (temporary, until the full-fidelity issue ships CoreDNS and kube-proxy images).
  docker cp "$BIN/kubeadm" "$BUILDER:/usr/bin/kubeadm.real"
  docker cp "$CI_DIR/kubeadm-skip-addons" "$BUILDER:/usr/bin/kubeadm"
  docker cp "$BIN/kubelet" "$BUILDER:/usr/bin/kubelet"
  docker cp "$BIN/kubectl" "$BUILDER:/usr/bin/kubectl"
  docker cp "$BIN/crictl" "$BUILDER:/usr/local/bin/crictl"
  # Over Debian's /usr/sbin/runc (/usr/bin/runc links to it), the one containerd's shim finds on PATH.
  docker cp "$RUNC" "$BUILDER:/usr/sbin/runc"
  docker exec "$BUILDER" chown root:root /usr/bin/kubeadm /usr/bin/kubeadm.real /usr/bin/kubelet /usr/bin/kubectl \
    /usr/local/bin/crictl /usr/sbin/runc
  docker exec "$BUILDER" chmod 0755 /usr/bin/kubeadm /usr/sbin/runc
  if [ -n "$CONTAINERD" ]; then
    # Over the base image's links to Debian's containerd 1.6 (kind's units run /usr/local/bin/containerd;
    # the shim and ctr are found on PATH, /usr/local/bin first), and kind's cri-base.json from this ctr.
    docker exec "$BUILDER" rm -f /usr/local/bin/containerd /usr/local/bin/ctr /usr/local/bin/containerd-shim-runc-v2
    for b in containerd ctr containerd-shim-runc-v2; do docker cp "$CONTAINERD/$b" "$BUILDER:/usr/local/bin/$b"; done
    docker exec "$BUILDER" chown root:root /usr/local/bin/containerd /usr/local/bin/ctr /usr/local/bin/containerd-shim-runc-v2
    docker exec "$BUILDER" sh -c 'ctr oci spec | jq ".hooks.createContainer[.hooks.createContainer| length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" | jq "del(.process.rlimits)" > /etc/containerd/cri-base.json'
  fi
  if [ "$MINOR" -ge 35 ]; then
    # A flag (not deprecated) in kind's kubelet defaults, so any kind config works on cgroup v1 hosts;
    # it changes nothing on cgroup v2 hosts.
    docker exec "$BUILDER" sed -i 's/^KUBELET_EXTRA_ARGS=/&--fail-cgroupv1=false /' /etc/default/kubelet
    docker exec "$BUILDER" grep -q -- '--fail-cgroupv1=false' /etc/default/kubelet || die "could not set --fail-cgroupv1=false in /etc/default/kubelet"
  fi
  docker exec -i "$BUILDER" sh -c "mkdir -p /kind/manifests /etc/cni/net.d && echo $KUBERNETES_VERSION > /kind/version"
  # kind applies default-cni.yaml unless disableDefaultCNI; networking is the static conflist below.
  docker exec -i "$BUILDER" sh -c 'cat > /kind/manifests/default-cni.yaml' <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata:
  name: kind-audit-static-cni
  namespace: kube-system
data:
  note: "Pod networking is the static ptp conflist in /etc/cni/net.d (single-node clusters)."
YAML
  docker exec -i "$BUILDER" sh -c 'cat > /etc/cni/net.d/10-kind-static.conflist' <<'JSON'
{"cniVersion": "0.4.0", "name": "kind-static", "plugins": [
  {"type": "ptp", "ipMasq": true, "mtu": 1500,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "/run/cni-ipam-state"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
}

preload() {
  local pid
  pid=$(docker exec "$BUILDER" sh -c 'nohup containerd > /var/log/build-containerd.log 2>&1 & echo $!')
  # ctr 1.6 has no `ctr info`; `ctr version` answers once the socket is up.
  docker exec "$BUILDER" sh -c 'for i in $(seq 1 50); do ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1' ||
    die "containerd did not start in the build container"
  docker exec -i "$BUILDER" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
    --all-platforms --no-unpack --digests - < "$WORK/images.tar" >/dev/null
  docker exec "$BUILDER" ctr --namespace=k8s.io images list -q | grep -v '^sha256:' > "$WORK/imported"
  while read -r img; do
    grep -qx "$img" "$WORK/imported" || die "image $img was not imported into the node's containerd"
  done < "$WORK/tags"
  docker exec "$BUILDER" kill "$pid"
  # Wait for containerd to exit (it may linger as a zombie of sleep), then drop its log.
  docker exec "$BUILDER" sh -c 'while [ -e /proc/$1 ] && ! grep -q "^State:.*Z" /proc/$1/status; do sleep 0.2; done; rm -f /var/log/build-containerd.log' _ "$pid"
}

commit() {
  docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' "$BUILDER" "$TMP_TAG" >/dev/null
  grep -qx "runc version ${RUNC_VERSION#v}" <<<"$(docker run --rm --entrypoint runc "$TMP_TAG" --version)" ||
    die "runc in $TMP_TAG is not $RUNC_VERSION"
  if [ -n "$CONTAINERD" ]; then
    docker run --rm --entrypoint containerd "$TMP_TAG" --version | grep -q " $CONTAINERD_VERSION\( \|$\)" ||
      die "containerd in $TMP_TAG is not $CONTAINERD_VERSION"
  fi
  docker tag "$TMP_TAG" "$NODE_IMAGE"   # tag only at the end: a half-built image is never trusted
}

stage kubeadm-image-list component_images
stage component-images make_component_images
stage assemble-node assemble
stage preload-images preload
stage commit commit
log "built $NODE_IMAGE ($(docker image inspect -f '{{.Size}}' "$NODE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
