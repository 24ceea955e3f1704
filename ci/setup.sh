#!/usr/bin/env bash
# Everything the real-cluster tests need, each step skipped when its output exists:
# a running Docker Engine, and for both lines (ci/versions.env) the kind CLI, the offline node image and
# a kubectl of the same version.
. "$(dirname "$0")/lib.sh"
t0=$(date +%s)
"$CI_DIR/ensure-docker.sh"

# line N: the kind CLI and node image of one line (CI_LINE=N picks its pins, see ci/lib.sh).
line() {
  export CI_LINE=$1
  "$CI_DIR/build-kind.sh"
  (. "$CI_DIR/lib.sh"
   if image_exists "$NODE_IMAGE"; then
     log "$NODE_IMAGE present, skipping the node image build"
   else
     "$CI_DIR/build-base-image.sh"
     binaries=$("$CI_DIR/build-binaries.sh" | tail -n 1)
     runc=$("$CI_DIR/build-runc.sh" | tail -n 1)
     network=$("$CI_DIR/build-network.sh" | tail -n 1)
     containerd=; [ -z "$CONTAINERD_VERSION" ] || containerd=$("$CI_DIR/build-containerd.sh" | tail -n 1)
     "$CI_DIR/build-node-image.sh" "$binaries" "$runc" "$network" ${containerd:+"$containerd"}
   fi)
  "$CI_DIR/install-kubectl.sh"
}
line 1
line 2
export CI_LINE=1
"$CI_DIR/build-workload-image.sh" >/dev/null  # the e2e tests' in-cluster workload (kind load docker-image)
# The local registry holding the node image, and kind CLIs whose default node image is in it (and one
# whose digest is not), for tests/e2e/test_default_image.py.
ref=$("$CI_DIR/ensure-registry.sh" | tail -n 1)
"$CI_DIR/build-kind-default.sh" kind-default-local "$ref"
"$CI_DIR/build-kind-default.sh" kind-default-missing "${ref%@*}@sha256:$(printf 'absent: %s' "$ref" | sha256sum | cut -c1-64)"
"$CI_DIR/ensure-chromium.sh"
log "ready in $(( $(date +%s) - t0 ))s: export PATH=$BIN_DIR:\$PATH PYTEST_KIND_AUDIT_IMAGE=$NODE_IMAGE"
log "second line: PATH=$BIN_DIR/kubectl-$KUBERNETES2_VERSION:$BIN_DIR:\$PATH PYTEST_KIND_AUDIT_KIND_BINARY=$BIN_DIR/kind-$KIND2_VERSION PYTEST_KIND_AUDIT_IMAGE=$NODE2_IMAGE"
