#!/usr/bin/env bash
# A real single-node SLURM on this machine, for the workflow's cluster test (tests/test_slurm.py) and by hand:
#
#   scripts/slurm-local.sh up       # munge, MariaDB, slurmdbd, slurmctld, slurmd; idempotent
#   scripts/slurm-local.sh status   # one line per daemon; exit 0 when all answer
#   scripts/slurm-local.sh down     # stops exactly the daemons this script started
#
# It installs nothing: the Debian packages `slurmctld slurmd slurm-client slurmdbd munge mariadb-server`
# must be there (.ci/run installs them). When it cannot start, it says why in one line on stderr
# ("slurm-local: ...") and exits 2; a test skips with that line.
#
# What it builds (docs/paper.md, "SLURM, tested for real"):
#  - one node, this machine: its real CPUs; partitions `cpu` (default) and `gpu`, as the project's profile
#    (workflow/profiles/slurm) names them;
#  - accounting through slurmdbd and a private MariaDB (127.0.0.1, port $MAWT_SLURM_DB_PORT), so that `sacct`
#    answers as on a real cluster; the accounts the profile names exist (AccountingStorageEnforce);
#  - the node stands in for a GPU node of the paper's size, so that the profile runs unchanged: two GPUs as
#    GRES backed by /dev/null and /dev/zero (no device: nothing can compute on them; the CPU setups never
#    ask), and a claimed memory of $MAWT_SLURM_MEMORY_MB (config_overrides) so that the profile's 64 GB
#    requests are accepted; what jobs really use is far below the machine's memory in the CPU setups.
#  - KillWait=5 (the default is 30 s): a job at its time limit is killed 5 s after its SIGTERM;
#    MinJobAge=600, so that `--slurm-status-command squeue` works too.
# The config must live in /etc/slurm (the executor plugin clears SLURM_CONF before its inner srun); a
# slurm.conf there that this script did not write is left alone, and `up` refuses.
set -Eeuo pipefail

STATE=${MAWT_SLURM_STATE:-/var/lib/mawt-slurm}
CONF=/etc/slurm
DB_PORT=${MAWT_SLURM_DB_PORT:-3307}
MEMORY_MB=${MAWT_SLURM_MEMORY_MB:-140000}
CLUSTER=mawt-local
MARK="# written by mawt scripts/slurm-local.sh"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROFILE=$ROOT/workflow/profiles/slurm/config.yaml
NODE=$(hostname -s)

fail() { echo "slurm-local: $*" >&2; exit 2; }
trap 'fail "failed at line $LINENO: $BASH_COMMAND"' ERR
say() { echo "slurm-local: $*"; }

# waits up to $1 seconds for the command after it to succeed
wait_for() {
    local limit=$1; shift
    for _ in $(seq $((limit * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    return 1
}

alive() { [[ -s $STATE/$1.pid ]] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

preflight() {
    [[ $(id -u) == 0 ]] || fail "needs root (it starts daemons and writes $CONF)"
    local missing=()
    for b in munged mariadbd mariadb-install-db mariadb slurmdbd slurmctld slurmd sacctmgr sbatch sacct scontrol sinfo; do
        command -v "$b" >/dev/null || missing+=("$b")
    done
    ((${#missing[@]} == 0)) || fail "missing ${missing[*]} (apt-get install slurmctld slurmd slurm-client slurmdbd munge mariadb-server)"
    if [[ -e $CONF/slurm.conf ]] && ! grep -qF "$MARK" "$CONF/slurm.conf"; then
        fail "$CONF/slurm.conf exists and was not written by this script: left alone"
    fi
}

accounts() {  # the accounts the profile names (slurm_account: "x")
    sed -n 's/^[[:space:]]*slurm_account:[[:space:]]*"\{0,1\}\([^"#[:space:]]*\)"\{0,1\}.*/\1/p' "$PROFILE" | sort -u
}

write_config() {
    local cpus; cpus=$(nproc)
    mkdir -p "$STATE"/{log,ctld,slurmd,run} "$CONF"
    cat >"$CONF/slurm.conf" <<EOF
$MARK
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
EnforcePartLimits=ALL
ReturnToService=2
KillWait=5
MinJobAge=600
GresTypes=gpu
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageEnforce=associations
AccountingStoreFlags=job_comment
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/none
NodeName=$NODE CPUs=$cpus RealMemory=$MEMORY_MB Gres=gpu:2 State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE MaxTime=INFINITE State=UP
EOF
    cat >"$CONF/gres.conf" <<EOF
$MARK
NodeName=$NODE Name=gpu File=/dev/null
NodeName=$NODE Name=gpu File=/dev/zero
EOF
    (umask 077 && cat >"$CONF/slurmdbd.conf" <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=mawt-local
StorageLoc=slurm_acct_db
EOF
    )
}

start_munge() {
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$STATE/munged.pid"
    wait_for 10 sh -c 'munge -n | unmunge' || fail "munged did not answer"
}

sql() { mariadb --protocol=socket --socket="$STATE/run/mysqld.sock" -uroot "$@"; }

start_mariadb() {
    alive mariadbd && sql -e 'select 1' >/dev/null 2>&1 && return 0
    if [[ ! -d $STATE/mysql/mysql ]]; then
        mkdir -p "$STATE/mysql" && chown mysql:mysql "$STATE/mysql"
        mariadb-install-db --user=mysql --datadir="$STATE/mysql" --auth-root-authentication-method=socket \
            >"$STATE/log/mariadb-install.log" 2>&1 || fail "mariadb-install-db failed ($STATE/log/mariadb-install.log)"
    fi
    chown mysql:mysql "$STATE/run"
    # as user mysql: its socket, pid file and log in the folder it owns
    mariadbd --user=mysql --datadir="$STATE/mysql" --bind-address=127.0.0.1 --port="$DB_PORT" \
        --socket="$STATE/run/mysqld.sock" --pid-file="$STATE/run/mariadbd.pid" \
        --innodb-buffer-pool-size=32M --log-error="$STATE/run/mariadbd.log" </dev/null >/dev/null 2>&1 &
    echo $! >"$STATE/mariadbd.pid"
    disown
    wait_for 30 sql -e 'select 1' || fail "MariaDB did not answer ($STATE/run/mariadbd.log)"
    sql -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'mawt-local';
            CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'mawt-local';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

start_slurmdbd() {
    alive slurmdbd && sacctmgr -n show cluster >/dev/null 2>&1 && return 0
    slurmdbd
    wait_for 30 sacctmgr -n show cluster || fail "slurmdbd did not answer ($STATE/log/slurmdbd.log)"
    sacctmgr -nP show cluster format=cluster | grep -qx "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
    local a
    for a in $(accounts) mawt; do
        sacctmgr -nP show account "$a" format=account | grep -qx "$a" || sacctmgr -i add account "$a" cluster="$CLUSTER" >/dev/null
        sacctmgr -nP show assoc user=root account="$a" format=user | grep -qx root \
            || sacctmgr -i add user root account="$a" cluster="$CLUSTER" >/dev/null
    done
}

start_slurmctld() {
    alive slurmctld && scontrol ping 2>/dev/null | grep -q UP && return 0
    slurmctld
    wait_for 30 sh -c 'scontrol ping | grep -q UP' || fail "slurmctld did not answer ($STATE/log/slurmctld.log)"
}

start_slurmd() {
    if ! alive slurmd; then slurmd; fi
    # an earlier start may have left the node drained or down
    sinfo -h -n "$NODE" -o %T 2>/dev/null | grep -Eq 'drain|down' && scontrol update nodename="$NODE" state=resume 2>/dev/null || true
    wait_for 30 sh -c "sinfo -h -n $NODE -o %T | grep -Eq '^(idle|mixed|allocated)'" \
        || fail "node $NODE is not idle: $(sinfo -h -n "$NODE" -o '%T %E' 2>&1) ($STATE/log/slurmd.log)"
}

up() {
    preflight
    write_config
    start_munge
    start_mariadb
    start_slurmdbd
    start_slurmctld
    start_slurmd
    say "up: cluster $CLUSTER, node $NODE ($(nproc) CPUs, gres gpu:2), partitions cpu gpu, accounts $(accounts | tr '\n' ' ')(slurm $(sinfo --version | cut -d' ' -f2))"
}

down() {
    local d pid
    for d in slurmd slurmctld slurmdbd mariadbd munged; do
        [[ -s $STATE/$d.pid ]] || continue
        pid=$(cat "$STATE/$d.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            wait_for 30 sh -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$STATE/$d.pid"
    done
    say "down"
}

status() {
    local d ok=0
    for d in munged mariadbd slurmdbd slurmctld slurmd; do
        if alive "$d"; then echo "$d: running (pid $(cat "$STATE/$d.pid"))"; else echo "$d: not running"; ok=1; fi
    done
    return $ok
}

case ${1:-} in
    up) up ;;
    down) down ;;
    status) trap - ERR; status ;;  # not running is an answer (exit 1), not a failure
    *) echo "usage: $0 up|down|status" >&2; exit 64 ;;
esac
