#!/usr/bin/env bash
# Make sure a Docker Engine answers: install Debian's docker.io when missing, start
# dockerd (with the capability-clamping runc wrapper only where the host's bounding
# set lacks capabilities) and wait until `docker info` answers; raise the inotify limits
# kind's nodes need.
. "$(dirname "$0")/lib.sh"

CAPFIX=/usr/local/libexec/pytest-kind-audit/runc-capfix
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/pytest-kind-audit-dockerd.log}

caps_missing() {
  # CapBnd shows every capability up to cap_last_cap when nothing is missing.
  local last bnd; last=$(cat /proc/sys/kernel/cap_last_cap)
  bnd=$((16#$(awk '/^CapBnd/{print $2}' /proc/self/status)))
  [ "$bnd" -ne $(( (1 << (last + 1)) - 1 )) ]
}

install_packages() {
  local pkgs=()
  [ -x /usr/sbin/dockerd ] || pkgs+=(docker.io)
  command -v jq >/dev/null || pkgs+=(jq)
  command -v debootstrap >/dev/null || pkgs+=(debootstrap)
  [ ${#pkgs[@]} -eq 0 ] && return 0
  need_space 1500 /var/lib
  # apt's lists may be missing or stale on a fresh machine.
  apt-get update -qq || die "apt-get update failed: Debian's package mirror is unreachable"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null ||
    die "apt-get install ${pkgs[*]} failed"
}

install_capfix() {
  mkdir -p "$(dirname "$CAPFIX")"
  cmp -s "$CI_DIR/runc-capfix" "$CAPFIX" 2>/dev/null || install -m0755 "$CI_DIR/runc-capfix" "$CAPFIX"
}

start_dockerd() {
  local args=()
  if caps_missing; then
    install_capfix
    args+=(--add-runtime "capfix=$CAPFIX" --default-runtime capfix)
  fi
  log "starting dockerd ${args[*]} (log: $DOCKERD_LOG)"
  # setsid: dockerd must outlive this script and the shell that ran it.
  setsid nohup /usr/sbin/dockerd "${args[@]}" >>"$DOCKERD_LOG" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    kill -0 $! 2>/dev/null || break
    sleep 1
  done
  tail -n 5 "$DOCKERD_LOG" >&2
  die "dockerd did not start; see $DOCKERD_LOG (lines above)"
}

# A daemon someone else started: add the wrapper through daemon.json and SIGHUP.
patch_running_daemon() {
  local cfg=/etc/docker/daemon.json pid
  install_capfix
  mkdir -p /etc/docker; [ -s "$cfg" ] || echo '{}' > "$cfg"
  jq --arg p "$CAPFIX" '.runtimes.capfix.path = $p | ."default-runtime" = "capfix"' "$cfg" > "$cfg.tmp" && mv "$cfg.tmp" "$cfg"
  pid=$(pidof dockerd) || die "docker answers but no local dockerd process runs: cannot add the runc wrapper; start dockerd with --default-runtime capfix"
  kill -HUP "$pid"
  for _ in $(seq 1 20); do
    [ "$(docker info --format '{{.DefaultRuntime}}')" = capfix ] && return 0; sleep 0.5
  done
  die "dockerd did not pick up the capfix runtime from $cfg"
}

# Every kind node's systemd and kubelet hold inotify instances; at the kernel's default of 128 per user a
# few clusters at once (xdist, parallel CI jobs) make kubeadm fail in a new node. kind's known-issues page
# asks for 512 and 524288 watches; only ever raised here, never lowered (a warning where it cannot be).
raise_inotify_limits() {
  local key want
  for key in fs.inotify.max_user_instances=512 fs.inotify.max_user_watches=524288; do
    want=${key#*=}; key=${key%=*}
    [ "$(sysctl -n "$key")" -ge "$want" ] || sysctl -qw "$key=$want" ||
      log "WARNING: cannot raise $key to $want: a few kind clusters at once may fail (kind's known issue: too many open files)"
  done
}

ensure() {
  stage install-packages install_packages
  raise_inotify_limits
  if ! docker info >/dev/null 2>&1; then
    stage start-dockerd start_dockerd
  elif caps_missing && [ "$(docker info --format '{{.DefaultRuntime}}')" != capfix ]; then
    stage patch-dockerd patch_running_daemon
  fi
  log "docker $(docker info --format '{{.ServerVersion}} runtime={{.DefaultRuntime}} cgroup=v{{.CgroupVersion}}')"
}
ensure
