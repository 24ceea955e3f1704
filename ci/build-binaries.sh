#!/usr/bin/env bash
# Build, from Go modules, every binary the offline node image needs:
# kubeadm, kubelet, kubectl, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy,
# etcd, crictl and pause. Output: $CACHE_DIR/binaries-<versions>/ (skipped when complete; a directory
# that lacks some binaries, e.g. one made before kube-proxy was added, gets only those built).
. "$(dirname "$0")/lib.sh"

OUT=$CACHE_DIR/binaries-$KUBERNETES_VERSION-etcd$ETCD_VERSION-crictl$CRICTL_VERSION
K8S_BINS=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
ALL_BINS=("${K8S_BINS[@]}" etcd crictl pause)

missing() { local b; for b in "$@"; do [ -x "$OUT/$b" ] || echo "$b"; done; }
if [ -z "$(missing "${ALL_BINS[@]}")" ]; then log "binaries present in $OUT, skipping"; echo "$OUT"; exit 0; fi

# Build into a temporary directory; it becomes $OUT only when every binary is there.
go_build_dir binaries 6000 "Kubernetes $KUBERNETES_VERSION"

build_kubernetes() {
  local w=$TMP/k8s-mod minor staging ldf p
  mkdir -p "$w"; cd "$w"
  go_or_die mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" > dl.json
  # Kubernetes' own go and godebug lines (go 1.24 for 1.34, 1.26 for 1.37): the same runtime defaults.
  { echo 'module example.invalid/k8sbuild'; grep -E '^(go|godebug) ' "$(jq -r .GoMod dl.json)"
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"; } > go.mod
  # k8s.io/kubernetes replaces its staging modules with ./staging paths; point each at
  # the published module of the matching v0.X.Y instead.
  staging=v0.${KUBERNETES_VERSION#v1.}
  awk '/=> \.\/staging\/src\//{print $1}' "$(jq -r .GoMod dl.json)" | sort -u |
    while read -r m; do echo "replace $m => $m $staging" >> go.mod; done
  minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  ldf="-s -w"
  # The same version variables as hack/lib/version.sh: kubeadm checks them.
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    ldf+=" -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  local pkgs=(); for b in $(missing "${K8S_BINS[@]}"); do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  GOFLAGS="-mod=mod -trimpath" go_or_die build -ldflags "$ldf" -o "$TMP/" "${pkgs[@]}"
}

build_etcd() {
  local w=$TMP/etcd-mod; mkdir -p "$w"; cd "$w"
  printf 'module example.invalid/etcdbuild\n\ngo 1.24\n' > go.mod
  go_or_die get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go_or_die build -ldflags '-s -w' -o "$TMP/etcd" go.etcd.io/etcd/server/v3
}

build_crictl() {
  GOBIN=$TMP go_or_die install -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
}

build_pause() { cd "$CI_DIR/pause"; go_or_die build -ldflags '-s -w' -o "$TMP/pause" .; }

[ -z "$(missing "${K8S_BINS[@]}")" ] || stage kubernetes build_kubernetes
[ -z "$(missing etcd)" ] || stage etcd build_etcd
[ -z "$(missing crictl)" ] || stage crictl build_crictl
[ -z "$(missing pause)" ] || stage pause build_pause
[ ! -x "$TMP/kubeadm" ] || "$TMP/kubeadm" version -o short | grep -qx "$KUBERNETES_VERSION" ||
  die "kubeadm reports $("$TMP/kubeadm" version -o short), expected $KUBERNETES_VERSION"
[ ! -x "$TMP/kube-proxy" ] || "$TMP/kube-proxy" --version | grep -qx "Kubernetes $KUBERNETES_VERSION" ||
  die "kube-proxy reports $("$TMP/kube-proxy" --version), expected Kubernetes $KUBERNETES_VERSION"
# Into place only once built: a directory missing a binary is completed, never left half-written.
mkdir -p "$OUT"; for b in $(missing "${ALL_BINS[@]}"); do mv "$TMP/$b" "$OUT/"; done
log "binaries ready in $OUT"
echo "$OUT"
