#!/usr/bin/env bash
# Make a Docker engine answer on this machine, set up by the project itself.
#
#   * if `docker info` already answers (any client, any daemon): nothing to do;
#   * otherwise install Debian's docker.io and debootstrap (apt-get, non-interactive, no stdin),
#     start the package's dockerd in the background and wait until `docker info` answers.
#
# Idempotent and safe to run concurrently (a lock file serialises callers). Exit status 0 when an
# engine answers, 1 with a one-line reason otherwise (callers such as `make test` tolerate that:
# the container tests are then skipped with that reason).
#
# Environment: CCBENCH_DOCKERD_LOG (default /var/log/ccbench-dockerd.log),
#              CCBENCH_DOCKER_WAIT_S (default 90) seconds to wait for the daemon.
set -uo pipefail

LOG="${CCBENCH_DOCKERD_LOG:-/var/log/ccbench-dockerd.log}"
WAIT_S="${CCBENCH_DOCKER_WAIT_S:-90}"
LOCK="${TMPDIR:-/tmp}/ccbench-docker-engine-setup.lock"

say() { echo "docker-engine: $*" >&2; }
fail() { say "$*"; exit 1; }

# The docker.io package's client has buildx/BuildKit; a static client earlier on PATH may not.
client() {
    if [[ -x /usr/bin/docker ]]; then echo /usr/bin/docker; else command -v docker || true; fi
}

answers() {
    local c
    c="$(client)"
    [[ -n "$c" ]] && timeout 20 "$c" info >/dev/null 2>&1
}

if answers; then
    say "engine answers ($(client))"
    exit 0
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        fail "no Docker engine answers and this user is not root (cannot install or start dockerd); start Docker yourself or use \`ccbench run --backend local\`"
    fi
fi

exec 9>"$LOCK" || fail "cannot open lock file $LOCK"
flock -w 300 9 || fail "timed out waiting for another docker-engine.sh to finish ($LOCK)"

# Someone else may have started it while we waited for the lock.
if answers; then
    say "engine answers ($(client))"
    exit 0
fi

if [[ ! -x /usr/sbin/dockerd || ! -x /usr/sbin/debootstrap ]]; then
    command -v apt-get >/dev/null 2>&1 || fail "no dockerd and no apt-get: install Docker yourself"
    say "installing docker.io and debootstrap with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    APT=("${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 -y -q)
    "${APT[@]}" update </dev/null >/dev/null || fail "apt-get update failed"
    "${APT[@]}" install --no-install-recommends docker.io debootstrap </dev/null >/dev/null \
        || fail "apt-get install docker.io debootstrap failed"
fi
[[ -x /usr/sbin/dockerd ]] || fail "dockerd is not installed after apt-get"

if ! pgrep -x dockerd >/dev/null 2>&1; then
    say "starting dockerd (log: $LOG)"
    # setsid + nohup: the daemon outlives this script and the caller's terminal.
    # 9>&-: the daemon must not inherit (and so hold forever) the lock.
    "${SUDO[@]}" setsid nohup /usr/sbin/dockerd >>"$LOG" 2>&1 </dev/null 9>&- &
fi

for ((i = 0; i < WAIT_S; i++)); do
    if answers; then
        say "engine answers ($(client)) after ${i}s"
        exit 0
    fi
    sleep 1
done
fail "dockerd did not answer within ${WAIT_S}s${DOCKER_HOST:+ at DOCKER_HOST=$DOCKER_HOST}; see $LOG"
