# Shared helpers for the ci/*.sh scripts: pins, paths, timing, one-line failures.
# shellcheck shell=bash
set -euo pipefail
CI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$CI_DIR")
# shellcheck source=versions.env
. "$CI_DIR/versions.env"
# Which line to build: 1 (the default) or 2, whose pins replace the first line's under the same names,
# so every script reads KIND_VERSION, KUBERNETES_VERSION, ... and NODE_IMAGE whatever the line.
# CONTAINERD_VERSION is empty for Debian's containerd; KIND_BINARY is the kind CLI's name in bin/, and
# KUBECTL_DIR the directory of the line's kubectl (put it first on PATH to use that line's kubectl).
# Build outputs that outlive a clone: reused by later runs on the same machine.
CACHE_DIR=${PYTEST_KIND_AUDIT_CACHE:-/var/cache/pytest-kind-audit}
BIN_DIR=$REPO_DIR/bin
CI_LINE=${CI_LINE:-1}
case $CI_LINE in
  1) CONTAINERD_VERSION=; KIND_BINARY=kind KUBECTL_DIR=$BIN_DIR ;;
  2) KIND_VERSION=$KIND2_VERSION KUBERNETES_VERSION=$KUBERNETES2_VERSION ETCD_VERSION=$ETCD2_VERSION
     CRICTL_VERSION=$CRICTL2_VERSION RUNC_VERSION=$RUNC2_VERSION CONTAINERD_VERSION=$CONTAINERD2_VERSION
     NODE_IMAGE=$NODE2_IMAGE KIND_BINARY=kind-$KIND2_VERSION KUBECTL_DIR=$BIN_DIR/kubectl-$KUBERNETES2_VERSION ;;
  *) printf '[%s] ERROR: CI_LINE=%s: the lines are 1 and 2 (ci/versions.env)\n' "$(basename "$0")" "$CI_LINE" >&2; exit 1 ;;
esac
export GOFLAGS=${GOFLAGS:--trimpath} CGO_ENABLED=0

# Messages name the script, and the line when it is not the first.
LOG_NAME=$(basename "$0")$([ "$CI_LINE" = 1 ] || echo " line $CI_LINE")
log() { printf '[%s] %s\n' "$LOG_NAME" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$LOG_NAME" "$*" >&2; exit 1; }

# stage NAME CMD...: run one build stage and print how long it took.
stage() {
  local name=$1 t0 ms rc=0; shift
  t0=$(date +%s%N)
  # A subshell outside any ||/if context, so set -e still applies inside the stage.
  set +e; ( set -e; "$@" ); rc=$?; set -e
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '[%s] stage %-28s %4d.%01ds%s\n' "$LOG_NAME" "$name" $((ms / 1000)) $((ms % 1000 / 100)) \
    "$([ $rc -eq 0 ] || echo " FAILED rc=$rc")" >&2
  return $rc
}

# need_space MIB DIR: fail early, in one line, when a build would fill the disk.
need_space() {
  mkdir -p "$2"
  local free; free=$(df -Pm "$2" | awk 'NR==2{print $4}')
  [ "$free" -ge "$1" ] || die "only ${free} MiB free in $2, need ${1} MiB: free some disk space (docker system prune, rm -rf $CACHE_DIR)"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# go_or_die ARGS...: a go command whose failure (often the module proxy) gets one clear line.
go_or_die() {
  local err; err=$(mktemp)
  if ! go "$@" 2>"$err"; then
    tail -n 20 "$err" >&2; rm -f "$err"
    die "go $1 failed (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY)); see the lines above"
  fi
  rm -f "$err"
}

# go_build_dir NAME MIB WHAT: for a script that builds from Go modules: Go on PATH, MIB MiB free, and $TMP,
# a scratch directory under the cache (removed on exit) where outputs are made before they are moved into
# place. WHAT says what needs Go, for the one-line failure.
go_build_dir() {
  command -v go >/dev/null || die "go not found: install Go 1.26 ($3 is built from Go modules)"
  need_space "$2" "$CACHE_DIR"
  TMP=$(mktemp -d "$CACHE_DIR/.$1.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
  export GOMAXPROCS=${GOMAXPROCS:-$(nproc)}
}
