#!/usr/bin/env bash
# A local image registry for the tests of kind's default node image (tests/e2e/test_default_image.py):
# distribution's cmd/registry built from its Go module into bin/, serving http://$REGISTRY_ADDR on
# loopback only (Docker pulls from 127.0.0.0/8 over plain HTTP without any daemon setting), its storage
# in $CACHE_DIR/registry. The node image is pushed to it, and the pushed reference, digest and all, is
# the last line printed on stdout. Each step is skipped when it is done: built, running, pushed.
. "$(dirname "$0")/lib.sh"

REGISTRY=$BIN_DIR/registry
REG_DIR=$CACHE_DIR/registry
PIDFILE=$REG_DIR/registry.pid
REG_LOG=${REGISTRY_LOG:-/var/log/pytest-kind-audit-registry.log}
REPO=${NODE_IMAGE%:*} TAG=${NODE_IMAGE##*:}
case $REGISTRY_ADDR in
  127.*:* | localhost:*) ;;
  *) die "REGISTRY_ADDR=$REGISTRY_ADDR: the registry listens on loopback only (127.x.x.x:PORT)" ;;
esac

built() { [ -x "$REGISTRY" ] && "$REGISTRY" --version 2>/dev/null | grep -q " ${REGISTRY_VERSION}\b"; }
build() {
  command -v go >/dev/null || die "go not found: install Go 1.26+ to build the registry from github.com/distribution/distribution/v3@$REGISTRY_VERSION"
  need_space 1000 "$BIN_DIR"
  local tmp; tmp=$(mktemp -d "$BIN_DIR/.registry.XXXXXX")
  GOBIN=$tmp go_or_die install -ldflags '-s -w' "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION"
  mv "$tmp/registry" "$REGISTRY"; rmdir "$tmp"
}

# The registry this script started, from any clone (the pid file is in the shared cache): the process in
# the pid file serves our config; ours when it is also the pinned version.
serving() {
  local pid cmd; pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"registry serve $REG_DIR/config.yml " ]]
}
ours() { serving && "/proc/$(cat "$PIDFILE")/exe" --version 2>/dev/null | grep -q " ${REGISTRY_VERSION}\b"; }
answers() { curl -fsS -m 5 -o /dev/null "http://$REGISTRY_ADDR/v2/" 2>/dev/null; }

start() {
  if serving; then  # ours, of another version: stop it by its pid
    local pid; pid=$(cat "$PIDFILE")
    log "stopping the registry of another version (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 20); do [ -e "/proc/$pid" ] || break; sleep 0.5; done
  fi
  rm -f "$PIDFILE"
  answers && die "something else answers on $REGISTRY_ADDR: stop it, or set REGISTRY_ADDR in ci/versions.env"
  mkdir -p "$REG_DIR/data"
  cat > "$REG_DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REG_DIR/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $REGISTRY_ADDR
EOF
  log "starting $REGISTRY on $REGISTRY_ADDR (log: $REG_LOG)"
  # setsid: the registry must outlive this script and the shell that ran it. No trace exporter.
  OTEL_TRACES_EXPORTER=none setsid nohup "$REGISTRY" serve "$REG_DIR/config.yml" >>"$REG_LOG" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 60); do
    answers && return 0
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
    sleep 0.5
  done
  tail -n 5 "$REG_LOG" >&2
  die "the registry did not answer on http://$REGISTRY_ADDR/v2/; see $REG_LOG (lines above)"
}

# The push is recorded as "<local image id> <digest>": done while the image is the same and the
# registry still serves that manifest.
RECORD=$REG_DIR/pushed-$(tr '/:' '__' <<<"$NODE_IMAGE")
has_manifest() {
  curl -fsS -m 10 -o /dev/null -I \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY_ADDR/v2/$REPO/manifests/$1" 2>/dev/null
}
pushed() {
  local id digest; [ -s "$RECORD" ] && read -r id digest < "$RECORD" || return 1
  [ "$id" = "$(docker image inspect -f '{{.Id}}' "$NODE_IMAGE")" ] && has_manifest "$digest"
}
push() {
  local remote=$REGISTRY_ADDR/$REPO:$TAG out digest
  docker tag "$NODE_IMAGE" "$remote"
  out=$(docker push "$remote" 2>&1) || { tail -n 3 <<<"$out" >&2; die "docker push $remote failed (lines above)"; }
  digest=$(grep -o 'digest: sha256:[0-9a-f]\{64\}' <<<"$out" | tail -n 1 | cut -d' ' -f2)
  [ -n "$digest" ] || die "docker push $remote printed no digest: $(tail -n 1 <<<"$out")"
  # Only the registry's tag goes; the image keeps $NODE_IMAGE. The tests pull it back by digest.
  docker rmi "$remote" >/dev/null
  echo "$(docker image inspect -f '{{.Id}}' "$NODE_IMAGE") $digest" > "$RECORD"
}

command -v curl >/dev/null || die "curl not found: apt-get install curl"
image_exists "$NODE_IMAGE" || die "$NODE_IMAGE is missing: run ci/setup.sh"
if built; then log "$("$REGISTRY" --version) present in $BIN_DIR, skipping the build"; else stage registry-build build; fi
built || die "bin/registry does not report $REGISTRY_VERSION: $("$REGISTRY" --version 2>&1)"
if ours && answers; then log "registry running on $REGISTRY_ADDR (pid $(cat "$PIDFILE"))"; else stage registry-start start; fi
if pushed; then log "$NODE_IMAGE already pushed to $REGISTRY_ADDR"; else stage registry-push push; fi
pushed || die "the registry does not serve the manifest pushed for $NODE_IMAGE"
echo "$REGISTRY_ADDR/$REPO:$TAG@$(cut -d' ' -f2 "$RECORD")"
