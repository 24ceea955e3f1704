#!/usr/bin/env bash
# Assemble the kind node image offline, the way kind's own builder does (docker run + cp +
# ctr import + commit), from the base image and the binaries built from Go modules.
# Output: the tag $NODE_IMAGE (skipped when it exists). kind's full set: the control-plane images,
# kube-proxy and CoreDNS as kubeadm names them, and a pod network across nodes (flannel, host-gw; kind's
# kindnetd is not served by the Go module proxy) in /kind/manifests/default-cni.yaml, where kind looks
# for its default CNI. runc is the one built by ci/build-runc.sh, in place of Debian's; so is
# containerd, for a line that pins CONTAINERD_VERSION (ci/build-containerd.sh), else it is Debian's
# from the base image.
. "$(dirname "$0")/lib.sh"

if image_exists "$NODE_IMAGE"; then log "$NODE_IMAGE present, skipping"; exit 0; fi
USAGE="usage: build-node-image.sh BINARIES_DIR RUNC NETWORK_DIR [CONTAINERD_DIR] (the outputs of ci/build-binaries.sh, ci/build-runc.sh, ci/build-network.sh and, for a line that pins CONTAINERD_VERSION, ci/build-containerd.sh)"
BIN=${1:?$USAGE}
RUNC=${2:?$USAGE}
NET=${3:?$USAGE}
CONTAINERD=${4:-}
image_exists "$BASE_IMAGE" || die "$BASE_IMAGE is missing: run ci/build-base-image.sh first"
for b in kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd crictl pause; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing: run ci/build-binaries.sh first"
done
for b in coredns flanneld; do [ -x "$NET/$b" ] || die "$NET/$b is missing: run ci/build-network.sh first"; done
# Not a registry name: the flannel image exists only inside the node's containerd.
FLANNEL_IMAGE=localhost/kind-audit/flannel:$FLANNEL_VERSION
grep -qx "runc version ${RUNC_VERSION#v}" <<<"$("$RUNC" --version 2>/dev/null)" || die "$RUNC is not runc $RUNC_VERSION: run ci/build-runc.sh first"
if [ -n "$CONTAINERD_VERSION" ]; then
  [ -n "$CONTAINERD" ] || die "$USAGE"
  "$CONTAINERD/containerd" --version 2>/dev/null | grep -q " $CONTAINERD_VERSION\( \|$\)" ||
    die "$CONTAINERD/containerd is not containerd $CONTAINERD_VERSION: run ci/build-containerd.sh first"
fi
# Kubelet 1.35+ refuses cgroup v1 hosts unless told otherwise (failCgroupV1 defaults to true).
MINOR=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
need_space 3000 "$CACHE_DIR"
# One build at a time on this Docker: the images made here carry fixed tags (the flannel image's) between
# their import and the save that takes them into the node.
exec 9>"$CACHE_DIR/.node-image.lock"
flock 9
image_exists "$NODE_IMAGE" && { log "$NODE_IMAGE present (built meanwhile), skipping"; exit 0; }

WORK=$(mktemp -d "$CACHE_DIR/.node.XXXXXX")
BUILDER=kind-audit-build-$$
TMP_TAG=kind-audit-ci/node-building:$$
COMPONENT_TAG=kind-audit-ci/control-plane-layer:$$
PAUSE_TAG=kind-audit-ci/pause-layer:$$
PROXY_TAG=kind-audit-ci/kube-proxy-layer:$$
COREDNS_TAG=kind-audit-ci/coredns-layer:$$
cleanup() {
  docker rm -f -v "$BUILDER" >/dev/null 2>&1 || true
  docker rmi -f "$TMP_TAG" "$COMPONENT_TAG" "$PAUSE_TAG" "$PROXY_TAG" "$COREDNS_TAG" "$FLANNEL_IMAGE" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The image names kubeadm will ask containerd for: computed, never hard-coded.
component_images() {
  "$BIN/kubeadm" config images list --kubernetes-version "$KUBERNETES_VERSION" > "$WORK/kubeadm-images"
  cat "$WORK/kubeadm-images" >&2
}

# The files kube-proxy and flanneld run beside their binary, from the base image: iptables (both
# backends, with its extensions), nft, conntrack, a shell and the few tools the scripts in ci/network
# use, each with the libraries it loads. A few MB instead of the base image's 300.
netbase_rootfs() {
  local root=$1
  mkdir -p "$root"
  # The xtables extension directory is found, not assumed: it is named after the architecture.
  docker run --rm --entrypoint sh "$BASE_IMAGE" -c '
    set -e
    x=$(dirname "$(ls /usr/lib/*/xtables/libxt_standard.so)")
    bins="/usr/sbin/xtables-nft-multi /usr/sbin/xtables-legacy-multi /usr/sbin/nft /usr/sbin/conntrack
      /usr/bin/dash /usr/bin/grep /usr/bin/cat /usr/bin/mv /usr/bin/ln /usr/bin/rm /usr/bin/sleep"
    libs=$(ldd $bins $x/*.so | awk "\$2 == \"=>\" && \$3 ~ /^\// {print \$3} NF > 1 && \$1 ~ /^\// {print \$1}" | sort -u)
    tar -chf - $bins $libs $x /etc/ethertypes /etc/protocols /etc/services' | tar -C "$root" -xf - ||
    die "could not copy iptables and its libraries from $BASE_IMAGE (the lines above say what was missing)"
  mkdir -p "$root/bin" "$root/tmp" "$root/run" "$root/var/run"
  chmod 1777 "$root/tmp"
  ln -sf /usr/bin/dash "$root/bin/sh"
  install -m0755 "$CI_DIR/network/iptables-wrapper" "$root/usr/sbin/iptables-wrapper"
  local b
  for b in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sf iptables-wrapper "$root/usr/sbin/$b"
    ln -sf xtables-legacy-multi "$root/usr/sbin/${b/tables/tables-legacy}"
    ln -sf xtables-nft-multi "$root/usr/sbin/${b/tables/tables-nft}"
  done
}

# kube-proxy (as kubeadm's DaemonSet runs it), flanneld with its CNI-config writer, and CoreDNS (its
# static binary as the entrypoint, as kubeadm's Deployment expects).
make_network_images() {
  local proxy=$WORK/proxy-rootfs flannel=$WORK/flannel-rootfs dns=$WORK/coredns-rootfs
  netbase_rootfs "$proxy"
  cp -a "$proxy" "$flannel"
  install -D -m0755 "$BIN/kube-proxy" "$proxy/usr/local/bin/kube-proxy"
  tar -C "$proxy" -c . | docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$PROXY_TAG" >/dev/null
  install -D -m0755 "$NET/flanneld" "$flannel/opt/bin/flanneld"
  install -D -m0755 "$CI_DIR/network/flanneld-cni" "$flannel/opt/bin/flanneld-cni"
  mkdir -p "$flannel/etc/kube-flannel"
  tar -C "$flannel" -c . | docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENTRYPOINT ["/opt/bin/flanneld-cni"]' - "$FLANNEL_IMAGE" >/dev/null
  echo "$FLANNEL_IMAGE" >> "$WORK/tags"
  mkdir -p "$dns/etc"
  install -m0755 "$NET/coredns" "$dns/coredns"
  # As root (CoreDNS's own image runs as a user with a file capability to bind port 53, which a plain
  # tar import does not carry); kubeadm's Deployment still drops every capability but that one.
  tar -C "$dns" -c . | docker import --change 'ENTRYPOINT ["/coredns"]' - "$COREDNS_TAG" >/dev/null
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
  make_network_images
  while read -r img; do
    case "$img" in
      */kube-apiserver:*|*/kube-controller-manager:*|*/kube-scheduler:*|*/etcd:*) docker tag "$COMPONENT_TAG" "$img" ;;
      */pause:*) docker tag "$PAUSE_TAG" "$img" ;;
      */kube-proxy:*) docker tag "$PROXY_TAG" "$img" ;;
      */coredns:*) docker tag "$COREDNS_TAG" "$img" ;;
      *) die "kubeadm names an image this script does not build: $img" ;;
    esac
    echo "$img" >> "$WORK/tags"
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
  docker cp "$BIN/kubeadm" "$BUILDER:/usr/bin/kubeadm"
  docker cp "$BIN/kubelet" "$BUILDER:/usr/bin/kubelet"
  docker cp "$BIN/kubectl" "$BUILDER:/usr/bin/kubectl"
  docker cp "$BIN/crictl" "$BUILDER:/usr/local/bin/crictl"
  # Over Debian's /usr/sbin/runc (/usr/bin/runc links to it), the one containerd's shim finds on PATH.
  docker cp "$RUNC" "$BUILDER:/usr/sbin/runc"
  docker exec "$BUILDER" chown root:root /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl \
    /usr/local/bin/crictl /usr/sbin/runc
  docker exec "$BUILDER" chmod 0755 /usr/sbin/runc
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
  # kind applies default-cni.yaml (a template over the pod subnet) unless the kind config disables it.
  sed "s|@FLANNEL_IMAGE@|$FLANNEL_IMAGE|" "$CI_DIR/network/default-cni.yaml" |
    docker exec -i "$BUILDER" sh -c 'cat > /kind/manifests/default-cni.yaml'
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
