#!/usr/bin/env bash
# Build CoreDNS and flannel's daemon from their Go modules, for the node images' DNS and pod network
# (shared by every line). Output: $CACHE_DIR/network-coredns<v>-flannel<v>/{coredns,flanneld}
# (skipped when present). The last line printed is the directory.
. "$(dirname "$0")/lib.sh"

OUT=$CACHE_DIR/network-coredns$COREDNS_VERSION-flannel$FLANNEL_VERSION
if [ -x "$OUT/coredns" ] && [ -x "$OUT/flanneld" ]; then log "CoreDNS and flanneld present in $OUT, skipping"; echo "$OUT"; exit 0; fi
go_build_dir network 3000 "CoreDNS $COREDNS_VERSION and flannel $FLANNEL_VERSION"

build_coredns() {
  GOBIN=$TMP go_or_die install -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  "$TMP/coredns" -version | grep -q "CoreDNS-${COREDNS_VERSION#v}" || die "coredns reports $("$TMP/coredns" -version | head -n 1)"
}

build_flannel() {
  # flannel's main package links every backend: the Go module proxy does not serve the Tencent Cloud SDK
  # its tencentvpc backend imports, and the udp backend needs cgo. Build its main.go, copied from the
  # module, in a module of our own with those two imports left out (host-gw is the backend used here).
  local w=$TMP/flannel-mod src
  mkdir -p "$w"; cd "$w"
  go_or_die mod download -json "github.com/flannel-io/flannel@$FLANNEL_VERSION" > dl.json
  src=$(jq -r .Dir dl.json)
  { echo 'module example.invalid/flannelbuild'; grep -E '^go ' "$(jq -r .GoMod dl.json)"
    echo "require github.com/flannel-io/flannel $FLANNEL_VERSION"; } > go.mod
  grep -Ev '"github.com/flannel-io/flannel/pkg/backend/(tencentvpc|udp)"' "$src/main.go" > main.go
  grep -q '"github.com/flannel-io/flannel/pkg/backend/hostgw"' main.go || die "flannel's main.go does not import the host-gw backend"
  # flannel prints the version it was stamped with.
  GOFLAGS="-mod=mod -trimpath" go_or_die build \
    -ldflags "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VERSION" -o "$TMP/flanneld" .
  "$TMP/flanneld" --version 2>&1 | grep -qx "$FLANNEL_VERSION" || die "flanneld reports $("$TMP/flanneld" --version 2>&1 | head -n 1)"
}

[ -x "$OUT/coredns" ] || stage coredns build_coredns
[ -x "$OUT/flanneld" ] || stage flannel build_flannel
mkdir -p "$OUT"
for b in coredns flanneld; do [ ! -x "$TMP/$b" ] || mv "$TMP/$b" "$OUT/"; done
log "CoreDNS and flanneld ready in $OUT"
echo "$OUT"
