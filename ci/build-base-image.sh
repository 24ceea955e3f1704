#!/usr/bin/env bash
# Build the kind node *base* image offline: a Debian rootfs from debootstrap plus kind's
# own base files (read from the kind Go module), imported into Docker. No registry.
# Output: the tag $BASE_IMAGE (skipped when it exists).
. "$(dirname "$0")/lib.sh"

if image_exists "$BASE_IMAGE"; then log "$BASE_IMAGE present, skipping"; exit 0; fi
command -v debootstrap >/dev/null || die "debootstrap not found: run ci/ensure-docker.sh (it installs it) or apt-get install debootstrap"
need_space 3000 "$CACHE_DIR"

PACKAGES=systemd,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz
PACKAGES+=,fuse-overlayfs,bash,ca-certificates,curl,jq,procps,e2fsprogs,containerd,runc,containernetworking-plugins
WORK=$(mktemp -d "$CACHE_DIR/.base.XXXXXX")
ROOTFS=$WORK/rootfs
RAW_TAG=kind-audit-ci/base-raw:$$
trap 'rm -rf "$WORK"; docker rmi -f "$RAW_TAG" >/dev/null 2>&1 || true' EXIT

# The Debian mirror this machine's apt already uses, so no host is named here.
apt_mirror() {
  local uri
  uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d/debian.sources}"
  echo "$uri"
}

kind_files() {
  go_or_die mod download -json "sigs.k8s.io/kind@$KIND_VERSION" > "$WORK/kind.json"
  KIND_FILES=$(jq -r .Dir "$WORK/kind.json")/images/base/files
  [ -f "$KIND_FILES/usr/local/bin/entrypoint" ] || die "kind's base files are missing in $KIND_FILES"
  echo "$KIND_FILES" > "$WORK/kind-files"
}

bootstrap() {
  debootstrap --variant=minbase --include="$PACKAGES" "$DEBIAN_SUITE" "$ROOTFS" "$(apt_mirror)" \
    > "$WORK/debootstrap.log" 2>&1 || { tail -n 5 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
}

# What kind's images/base/Dockerfile does, minus its downloads, plus the two fixes this
# VM type needs (Debian's containerd paths, restrict_oom_score_adj).
prepare() {
  local R=$ROOTFS F; F=$(cat "$WORK/kind-files")
  install -m0755 "$F"/usr/local/bin/* "$R/usr/local/bin/"
  mkdir -p "$R/kind/bin"
  install -m0644 "$F/kind/README.txt" "$R/kind/" 2>/dev/null || true
  install -m0755 "$F"/kind/bin/* "$R/kind/bin/"
  chmod 755 "$R/kind" "$R/kind/bin"
  mkdir -p "$R/etc/containerd" "$R/etc/default" "$R/etc/sysctl.d" "$R/etc/systemd/system/kubelet.service.d"
  install -m0644 "$F/etc/crictl.yaml" "$R/etc/"
  install -m0644 "$F/etc/containerd/config.toml" "$R/etc/containerd/"
  install -m0644 "$F/etc/default/kubelet" "$R/etc/default/"
  install -m0644 "$F"/etc/sysctl.d/* "$R/etc/sysctl.d/"
  install -m0644 "$F"/etc/systemd/system/*.service "$F"/etc/systemd/system/*.slice "$R/etc/systemd/system/"
  install -m0644 "$F"/etc/systemd/system/kubelet.service.d/* "$R/etc/systemd/system/kubelet.service.d/"
  # kind's units call /usr/local/bin/containerd; Debian installs it in /usr/bin.
  for b in containerd ctr containerd-shim-runc-v2; do ln -sf "/usr/bin/$b" "$R/usr/local/bin/$b"; done
  mkdir -p "$R/opt/cni/bin"
  for p in host-local loopback ptp portmap bridge; do ln -sf "/usr/lib/cni/$p" "$R/opt/cni/bin/$p"; done
  # Lowering oom_score_adj needs CAP_SYS_RESOURCE, which this VM type lacks: every pod
  # sandbox fails without this (kind sets it for rootless nodes; harmless elsewhere).
  sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' "$R/etc/containerd/config.toml"
  grep -q 'restrict_oom_score_adj = true' "$R/etc/containerd/config.toml" || die "could not set restrict_oom_score_adj in containerd's config"
  find "$R/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
  rm -f "$R"/lib/systemd/system/multi-user.target.wants/* "$R"/etc/systemd/system/*.wants/* \
    "$R"/lib/systemd/system/local-fs.target.wants/* "$R"/lib/systemd/system/sockets.target.wants/*udev* \
    "$R"/lib/systemd/system/sockets.target.wants/*initctl* "$R"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >> "$R/etc/systemd/journald.conf"
  [ -e "$R/sbin/init" ] || ln -s /usr/lib/systemd/systemd "$R/sbin/init"
  chroot "$R" systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1
  chroot "$R" systemctl mask systemd-binfmt.service >/dev/null 2>&1
  mkdir -p "$R/etc/kubernetes/manifests"
  chroot "$R" sh -c 'ctr oci spec | jq ".hooks.createContainer[.hooks.createContainer| length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" | jq "del(.process.rlimits)" > /etc/containerd/cri-base.json'
  chroot "$R" apt-get clean
  rm -rf "$R"/var/lib/apt/lists/* "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/var/log/*.log
  : > "$R/etc/machine-id"
}

import_image() {
  tar -C "$ROOTFS" -c . | docker import --change 'ENV container=docker' \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' - "$RAW_TAG" >/dev/null
  # Docker 20.10 refuses STOPSIGNAL in import/commit; a FROM-local build adds it offline.
  mkdir -p "$WORK/stopsig"
  printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\n' "$RAW_TAG" > "$WORK/stopsig/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$BASE_IMAGE" "$WORK/stopsig" >"$WORK/build.log" 2>&1 ||
    { cat "$WORK/build.log" >&2; die "docker build of the STOPSIGNAL layer failed"; }
}

stage kind-base-files kind_files
stage debootstrap bootstrap
stage prepare-rootfs prepare
stage docker-import import_image
log "built $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
