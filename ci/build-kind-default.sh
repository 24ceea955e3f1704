#!/usr/bin/env bash
# build-kind-default.sh NAME REF: a kind CLI built from the pinned kind module whose default node image
# (the `const Image` of pkg/apis/config/defaults/image.go, which no -X flag can set) is REF, into
# bin/NAME, with REF in bin/NAME.image for the tests. `bin/NAME version` still says $KIND_VERSION.
# Skipped when bin/NAME already carries REF.
. "$(dirname "$0")/lib.sh"

NAME=${1:?usage: build-kind-default.sh NAME IMAGE_REFERENCE}
REF=${2:?usage: build-kind-default.sh NAME IMAGE_REFERENCE}
OUT=$BIN_DIR/$NAME
[[ $REF =~ ^[a-z0-9.:/_-]+:[A-Za-z0-9_.-]+@sha256:[0-9a-f]{64}$ ]] ||
  die "$REF is not a digest-pinned image reference (REPO:TAG@sha256:<64 hex>)"

have() {
  [ -x "$OUT" ] && grep -qF "$REF" "$OUT" && [ "$(cat "$OUT.image" 2>/dev/null)" = "$REF" ] &&
    "$OUT" version 2>/dev/null | grep -q "^kind $KIND_VERSION "
}
if have; then log "$NAME (kind $KIND_VERSION, default image $REF) present in $BIN_DIR, skipping"; exit 0; fi
command -v go >/dev/null || die "go not found: install Go 1.26+ to build kind from sigs.k8s.io/kind@$KIND_VERSION"
command -v jq >/dev/null || die "jq not found: run ci/ensure-docker.sh (it installs jq)"
need_space 1000 "$BIN_DIR"

build() {
  local src work tmp defaults
  src=$(go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | jq -r '.Dir // empty') ||
    die "go mod download sigs.k8s.io/kind@$KIND_VERSION failed (is the Go module proxy reachable?)"
  [ -n "$src" ] || die "go mod download sigs.k8s.io/kind@$KIND_VERSION gave no directory"
  work=$(mktemp -d "$CACHE_DIR/.kind-src.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  # The module cache is read-only: build a writable copy.
  cp -r "$src/." "$work/"; chmod -R u+w "$work"
  defaults=$work/pkg/apis/config/defaults/image.go
  [ "$(grep -c '^const Image = "' "$defaults")" = 1 ] || die "$defaults has no single 'const Image = \"...\"' line"
  sed -i "s|^const Image = \".*\"$|const Image = \"$REF\"|" "$defaults"
  grep -qF "const Image = \"$REF\"" "$defaults" || die "could not set the default image in $defaults"
  tmp=$(mktemp "$BIN_DIR/.$NAME.XXXXXX")
  (cd "$work" && go_or_die build -ldflags '-s -w' -o "$tmp" .)
  mv "$tmp" "$OUT"
  echo "$REF" > "$OUT.image"
}
mkdir -p "$CACHE_DIR"
stage "$NAME" build
have || die "bin/$NAME does not carry $REF or does not report kind $KIND_VERSION"
log "bin/$NAME: $("$OUT" version), default image $REF"
