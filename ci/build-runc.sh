#!/usr/bin/env bash
# Build runc from its Go module for the node image, in place of Debian bookworm's runc 1.1.5,
# which predates runc 1.1.8's cgroup v1 freezer fix (a `runc init` left in a FROZEN freezer
# cgroup keeps Docker from killing the node container). Static, with seccomp (kubeadm's static
# pods ask for seccompProfile RuntimeDefault, which a runc without seccomp cannot apply).
# Output: $CACHE_DIR/runc-$RUNC_VERSION/runc (skipped when present; any node image that pins
# this version shares it). The last line printed is the binary's path.
. "$(dirname "$0")/lib.sh"

OUT=$CACHE_DIR/runc-$RUNC_VERSION
# `runc --version` names the version and, when built with seccomp, the libseccomp it links.
have() {
  local v; v=$("$1" --version 2>/dev/null) || return 1
  grep -qx "runc version ${RUNC_VERSION#v}" <<<"$v" && grep -q '^libseccomp: ' <<<"$v"
}
if [ -x "$OUT/runc" ] && have "$OUT/runc"; then log "runc $RUNC_VERSION present in $OUT, skipping"; echo "$OUT/runc"; exit 0; fi
command -v go >/dev/null || die "go not found: install Go 1.23+ (runc is built from github.com/opencontainers/runc@$RUNC_VERSION)"
need_space 1000 "$CACHE_DIR"
TMP=$(mktemp -d "$CACHE_DIR/.runc.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# cgo: runc's nsenter is C, and seccomp needs libseccomp (linked statically from libseccomp-dev).
install_packages() {
  local pkgs=() p
  for p in gcc libc6-dev pkg-config libseccomp-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || pkgs+=("$p")
  done
  [ ${#pkgs[@]} -eq 0 ] && return 0
  apt-get update -qq || die "apt-get update failed: Debian's package mirror is unreachable"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null || die "apt-get install ${pkgs[*]} failed"
}

# The module's own tree (its zip has no vendor/ sources, so -mod=mod), built the way its
# Makefile's `static` target does: static PIE, tags seccomp urfave_cli_no_docs netgo osusergo.
build_runc() {
  local src
  go_or_die mod download -json "github.com/opencontainers/runc@$RUNC_VERSION" > "$TMP/dl.json"
  src=$(jq -r .Dir "$TMP/dl.json")
  [ -f "$src/VERSION" ] || die "runc's module source is missing in $src"
  cd "$src"
  GOFLAGS="-mod=mod -trimpath" CGO_ENABLED=1 go_or_die build -buildmode=pie \
    -tags "seccomp urfave_cli_no_docs netgo osusergo" \
    -ldflags "-s -w -X main.gitCommit=$RUNC_VERSION -linkmode external -extldflags -static-pie" -o "$TMP/runc" .
}

stage install-packages install_packages
stage runc build_runc
have "$TMP/runc" || die "the built runc reports $("$TMP/runc" --version 2>&1 | tr '\n' ' '), expected $RUNC_VERSION with libseccomp"
mkdir -p "$TMP/final"; mv "$TMP/runc" "$TMP/final/"
rm -rf "$OUT"; mv "$TMP/final" "$OUT"
log "$("$OUT/runc" --version | tr '\n' ' ')"
echo "$OUT/runc"
