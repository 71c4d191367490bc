#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, on loopback: for the cluster tests and for trying
# `ccbench run --scheduler` with dask-jobqueue's SLURMCluster before a real cluster.
#
#   * if `sinfo` already shows an idle or mixed node: nothing to do;
#   * otherwise install Debian's slurmctld, slurmd, slurm-client and munge (apt-get,
#     non-interactive), write a munge key and a one-node slurm.conf (the node is this host,
#     at 127.0.0.1, with all its CPUs and memory as slurmd counts them; no cgroups, no
#     accounting; up to two jobs may share a core, so that a one-CPU machine still runs
#     the tests' two worker jobs side by side), start munged,
#     slurmctld and slurmd in the background and wait until the node is idle;
#   * either way, run a one-second job (sbatch --wait) to prove that the node runs jobs.
#
# Never touches a slurm.conf it did not write (marker line). Exit status 0 when the node answers,
# 1 with a one-line reason otherwise (the Slurm tests are then skipped with it).
#
# Environment: CCBENCH_SLURM_WAIT_S (default 60) seconds to wait for the node.
set -uo pipefail

WAIT_S="${CCBENCH_SLURM_WAIT_S:-60}"
CONF=/etc/slurm/slurm.conf
MARK="# written by ccbench scripts/slurm-node.sh"
LOCK="${TMPDIR:-/tmp}/ccbench-slurm-node-setup.lock"

say() { echo "slurm-node: $*" >&2; }
fail() { say "$*"; exit 1; }

ready() {
    command -v sinfo >/dev/null 2>&1 &&
        timeout 10 sinfo -h -o %t 2>/dev/null | grep -Eq '^(idle|mix|alloc)'
}

# A node that answers can still refuse to run jobs (drained, a failing slurmstepd): run one.
probe() {
    local out
    if out="$(timeout 90 sbatch --wait --job-name=ccbench-probe --time=1 --mem=16M \
        --output=/dev/null --error=/dev/null --wrap=true 2>&1)"; then
        return 0
    fi
    scancel --name=ccbench-probe >/dev/null 2>&1 || true
    fail "the Slurm node answers but did not run a one-second job within 90s ($(echo "$out" |
        tail -n 1); node: $(sinfo -h -o '%t %E' 2>/dev/null | head -n 1); see /var/log/slurm/)"
}

if ready; then
    probe
    say "node answers and runs jobs"
    exit 0
fi
[[ "$(id -u)" -eq 0 ]] || fail "no Slurm node answers and this user is not root (cannot install or start Slurm)"

exec 9>"$LOCK" || fail "cannot open lock file $LOCK"
flock -w 300 9 || fail "timed out waiting for another slurm-node.sh ($LOCK)"
if ready; then
    probe
    say "node answers and runs jobs"
    exit 0
fi

if [[ ! -x /usr/sbin/slurmctld || ! -x /usr/sbin/slurmd || ! -x /usr/sbin/munged ]]; then
    command -v apt-get >/dev/null 2>&1 || fail "no Slurm and no apt-get: install slurm-wlm yourself"
    say "installing slurmctld, slurmd, slurm-client and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge \
        </dev/null >/tmp/ccbench-slurm-apt.log 2>&1 ||
        { apt-get update </dev/null >>/tmp/ccbench-slurm-apt.log 2>&1 &&
            apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge \
                </dev/null >>/tmp/ccbench-slurm-apt.log 2>&1; } ||
        fail "apt-get could not install Slurm (see /tmp/ccbench-slurm-apt.log)"
fi

# munge: the key authenticates slurmctld, slurmd and the clients to one another
if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then
    su -s /bin/sh munge -c "/usr/sbin/munged --force" || fail "munged did not start"
    for _ in $(seq 10); do munge_ok && break; sleep 0.5; done
    munge_ok || fail "munged does not answer (see /var/log/munge/munged.log)"
fi

host="$(hostname -s)"
# The CPUs as slurmd itself counts them (the hardware), not `nproc`: under a CPU affinity mask
# (a CI runner pinned to one core) `nproc` says fewer, and a node declared with fewer CPUs than
# the worker jobs ask for together leaves all but one of them pending.
cpus="$(/usr/sbin/slurmd -C 2>/dev/null | sed -n 's/.*[[:space:]]CPUs=\([0-9]\+\).*/\1/p' | head -n 1)"
[[ "$cpus" =~ ^[0-9]+$ ]] || cpus="$(nproc --all)"
mem_mb="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
if [[ -f "$CONF" ]] && ! grep -qF "$MARK" "$CONF"; then
    fail "$CONF exists and was not written by this script: start your Slurm yourself"
fi
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
chown slurm:slurm /var/spool/slurmctld /var/log/slurm 2>/dev/null || true
cat >"$CONF" <<CONF
$MARK
ClusterName=ccbench
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:2
CONF
chmod 644 "$CONF"

if ! timeout 10 scontrol ping 2>/dev/null | grep -q UP; then
    /usr/sbin/slurmctld -c >>/var/log/slurm/start.log 2>&1 ||
        fail "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
fi
if [[ ! -f /run/slurmd.pid ]] || ! kill -0 "$(cat /run/slurmd.pid)" 2>/dev/null; then
    /usr/sbin/slurmd >>/var/log/slurm/start.log 2>&1 ||
        fail "slurmd did not start (see /var/log/slurm/slurmd.log)"
fi

for _ in $(seq "$WAIT_S"); do
    if ready; then
        probe
        say "node $host answers and runs jobs ($cpus CPUs, $mem_mb MB)"
        exit 0
    fi
    scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
    sleep 1
done
fail "the Slurm node did not become idle within ${WAIT_S}s (see /var/log/slurm/)"
