# Shared helpers for the ci/*.sh scripts: pins, paths, timing, one-line failures.
# shellcheck shell=bash
set -euo pipefail
CI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$CI_DIR")
# shellcheck source=versions.env
. "$CI_DIR/versions.env"
# Build outputs that outlive a clone: reused by later runs on the same machine.
CACHE_DIR=${PYTEST_KIND_AUDIT_CACHE:-/var/cache/pytest-kind-audit}
BIN_DIR=$REPO_DIR/bin
export GOFLAGS=${GOFLAGS:--trimpath} CGO_ENABLED=0

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# stage NAME CMD...: run one build stage and print how long it took.
stage() {
  local name=$1 t0 ms rc=0; shift
  t0=$(date +%s%N)
  # A subshell outside any ||/if context, so set -e still applies inside the stage.
  set +e; ( set -e; "$@" ); rc=$?; set -e
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '[%s] stage %-28s %4d.%01ds%s\n' "$(basename "$0")" "$name" $((ms / 1000)) $((ms % 1000 / 100)) \
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
