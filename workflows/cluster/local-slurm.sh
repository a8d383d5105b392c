#!/usr/bin/env bash
# A single-node SLURM on this machine: for the test suite, and for trying the slurm profile on
# a workstation before a cluster. Root only; Debian/Ubuntu (apt); no systemd needed.
#
#   workflows/cluster/local-slurm.sh up      install what is missing (apt), write the configs,
#                                            start munged, MariaDB, slurmdbd, slurmctld, slurmd
#   workflows/cluster/local-slurm.sh status  daemons, partitions, node state
#   workflows/cluster/local-slurm.sh down    cancel every job, stop the daemons it started
#   workflows/cluster/local-slurm.sh conf    print the slurm.conf and gres.conf `up` writes
#
# One node with this machine's CPUs and memory (`slurmd -C`); partition `cpu` (default) and,
# where nvidia-smi lists GPUs, `gpu`. Accounting (sacct, sacctmgr) through slurmdbd on a private
# MariaDB (127.0.0.1:$NEUROCNNF_SLURM_DB_PORT, default 13306), account `neurocnnf` for root.
# State and logs: $NEUROCNNF_SLURM_STATE (default /var/lib/neurocnnf-slurm). The configs go to
# /etc/slurm, where SLURM's commands look; an existing slurm.conf not written here is left alone.
# Exit status 2: SLURM cannot be started here (not root, no apt-get, apt-get failed, a foreign
# slurm.conf); 1: it failed to start (see the logs).
set -euo pipefail

STATE=${NEUROCNNF_SLURM_STATE:-/var/lib/neurocnnf-slurm}
DB_PORT=${NEUROCNNF_SLURM_DB_PORT:-13306}
CONF=/etc/slurm
RUN=/run/neurocnnf-slurm
LOG=$STATE/log
CLUSTER=neurocnnf
ACCOUNT=neurocnnf
MARK="# written by neurocnnf workflows/cluster/local-slurm.sh"
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)
DB_SOCKET=$RUN/mysqld.sock

say() { echo "local-slurm: $*"; }
die() { echo "local-slurm: $*" >&2; exit 1; }
cannot() { echo "local-slurm: $*" >&2; exit 2; }

install_packages() {
    local tool missing=0
    for tool in slurmctld slurmd slurmdbd sbatch munged mariadbd mariadb-install-db; do
        command -v "$tool" > /dev/null || missing=1
    done
    [[ $missing == 0 ]] && return
    command -v apt-get > /dev/null || cannot "SLURM is not installed and apt-get is missing:" \
        "install ${PACKAGES[*]} with your package manager"
    say "installing ${PACKAGES[*]} (apt-get)"
    local started=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq > "$LOG/apt.log" 2>&1 || cannot "apt-get update failed (see $LOG/apt.log)"
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >> "$LOG/apt.log" 2>&1 ||
        cannot "apt-get install ${PACKAGES[*]} failed (see $LOG/apt.log)"
    say "installed in $((SECONDS - started)) s"
}

gpu_count() {
    command -v nvidia-smi > /dev/null || { echo 0; return; }
    nvidia-smi -L 2> /dev/null | grep -c '^GPU' || true
}

# slurm_conf GPUS: one node, this machine as slurmd sees it (CPUs, sockets, cores, threads,
# RealMemory); partition cpu (default), and gpu where GPUS > 0
slurm_conf() {
    local gpus=$1 host node
    host=$(hostname -s)
    node=$(slurmd -C | head -1 | sed -e "s/^NodeName=[^ ]*/NodeName=$host NodeAddr=127.0.0.1/" \
        -e "s/ Gres=[^ ]*//")  # the GPUs come from nvidia-smi, below
    echo "$MARK"
    echo "ClusterName=$CLUSTER"
    echo "SlurmctldHost=$host(127.0.0.1)"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "AuthType=auth/munge"
    echo "StateSaveLocation=$STATE/slurmctld"
    echo "SlurmdSpoolDir=$STATE/slurmd"
    echo "SlurmctldPidFile=$RUN/slurmctld.pid"
    echo "SlurmdPidFile=$RUN/slurmd.pid"
    echo "SlurmctldLogFile=$LOG/slurmctld.log"
    echo "SlurmdLogFile=$LOG/slurmd.log"
    echo "# a container: no systemd, no cgroups"
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "JobAcctGatherType=jobacct_gather/linux"
    echo "MpiDefault=none"
    echo "MailProg=/bin/true"
    echo "SchedulerType=sched/backfill"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_Core_Memory"
    echo "DefMemPerCPU=1000"
    echo "ReturnToService=2"
    echo "MinJobAge=600"
    echo "KillWait=10"
    echo "AccountingStorageType=accounting_storage/slurmdbd"
    echo "AccountingStorageHost=localhost"
    echo "AccountingStoreFlags=job_comment"
    echo "JobCompType=jobcomp/none"
    if [[ $gpus -gt 0 ]]; then
        echo "GresTypes=gpu"
        echo "AccountingStorageTRES=gres/gpu"
        echo "$node Gres=gpu:$gpus State=UNKNOWN"
    else
        echo "$node State=UNKNOWN"
    fi
    echo "PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
    if [[ $gpus -gt 0 ]]; then
        echo "PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP"
    fi
}

# gres_conf GPUS: the node's GPUs as /dev/nvidia<i> (nothing where GPUS is 0)
gres_conf() {
    local gpus=$1
    [[ $gpus -gt 0 ]] || return 0
    echo "$MARK"
    echo "AutoDetect=off"
    if [[ $gpus == 1 ]]; then
        echo "Name=gpu File=/dev/nvidia0"
    else
        echo "Name=gpu File=/dev/nvidia[0-$((gpus - 1))]"
    fi
}

write_configs() {
    if [[ -e $CONF/slurm.conf ]] && ! grep -qF "$MARK" "$CONF/slurm.conf"; then
        cannot "$CONF/slurm.conf exists and was not written by this script: not touching it"
    fi
    local gpus
    gpus=$(gpu_count)
    mkdir -p "$CONF"
    slurm_conf "$gpus" > "$CONF/slurm.conf"
    if [[ $gpus -gt 0 ]]; then
        gres_conf "$gpus" > "$CONF/gres.conf"
    else
        rm -f "$CONF/gres.conf"
    fi
    [[ -s $STATE/db-password ]] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' \
        > "$STATE/db-password")
    (umask 077; cat > "$CONF/slurmdbd.conf" <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$(cat "$STATE/db-password")
StorageLoc=slurm_acct_db
EOF
    )
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds
wait_for() {
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq "$((seconds * 2))"); do
        "$@" > /dev/null 2>&1 && return 0
        sleep 0.5
    done
    die "$what did not come up within ${seconds}s (logs: $LOG)"
}

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2> /dev/null; }

start_munge() {
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile /etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
    if ! alive /run/munge/munged.pid; then  # a munged already running is shared, not stopped
        runuser -u munge -- munged < /dev/null >> "$LOG/munged.out" 2>&1
        touch "$RUN/munged.ours"
    fi
    wait_for 20 munged bash -c "munge -n | unmunge"
}

start_mariadb() {
    if [[ ! -d $STATE/mysql/mysql ]]; then
        mariadb-install-db --user=root --datadir="$STATE/mysql" --skip-test-db \
            > "$LOG/mariadb-install.log" 2>&1 || die "mariadb-install-db failed (see $LOG)"
    fi
    if ! alive "$RUN/mysqld.pid"; then
        setsid mariadbd --no-defaults --user=root --datadir="$STATE/mysql" \
            --socket="$DB_SOCKET" --port="$DB_PORT" --bind-address=127.0.0.1 \
            --pid-file="$RUN/mysqld.pid" --log-error="$LOG/mariadb.log" \
            --innodb-buffer-pool-size=64M < /dev/null > /dev/null 2>&1 &
    fi
    wait_for 60 MariaDB mariadb-admin --socket="$DB_SOCKET" ping
    local password
    password=$(cat "$STATE/db-password")
    mariadb --socket="$DB_SOCKET" -e "
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$password';
        ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$password';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_slurm() {
    alive "$RUN/slurmdbd.pid" || slurmdbd < /dev/null >> "$LOG/slurmdbd.out" 2>&1
    wait_for 60 slurmdbd sacctmgr -n list cluster
    sacctmgr -n list cluster format=cluster | grep -qw "$CLUSTER" ||
        sacctmgr -i add cluster "$CLUSTER" > /dev/null
    sacctmgr -n list account format=account | grep -qw "$ACCOUNT" ||
        sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" \
            description="local SLURM of neurocnnf" > /dev/null
    sacctmgr -n list user root format=defaultaccount | grep -qw "$ACCOUNT" ||
        sacctmgr -i add user root account="$ACCOUNT" defaultaccount="$ACCOUNT" > /dev/null
    alive "$RUN/slurmctld.pid" || slurmctld < /dev/null >> "$LOG/slurmctld.out" 2>&1
    wait_for 60 slurmctld scontrol ping
    alive "$RUN/slurmd.pid" || slurmd < /dev/null >> "$LOG/slurmd.out" 2>&1
    wait_for 60 "the node" bash -c "sinfo -h -N -o %T | grep -qE '^(idle|mixed|allocated)'"
}

up() {
    [[ $EUID == 0 ]] || cannot "run as root (it installs packages and starts daemons)"
    mkdir -p "$STATE/slurmctld" "$STATE/slurmd" "$LOG" "$RUN"
    install_packages
    write_configs
    start_munge
    start_mariadb
    start_slurm
    say "up: $(sinfo -h -o '%P %D nodes %c CPUs %m MB %T' | tr '\n' ';')"
}

# stop PIDFILE NAME: TERM, then KILL after 30 s
stop() {
    local pidfile=$1 name=$2 pid
    alive "$pidfile" || return 0
    pid=$(cat "$pidfile")
    kill -TERM "$pid"
    for _ in $(seq 60); do
        kill -0 "$pid" 2> /dev/null || { rm -f "$pidfile"; return 0; }
        sleep 0.5
    done
    say "$name ($pid) ignored TERM: killing it"
    kill -KILL "$pid" 2> /dev/null || true
    rm -f "$pidfile"
}

down() {
    if alive "$RUN/slurmctld.pid"; then
        scancel --full --quiet --user=root 2> /dev/null || true
        squeue -h -o %i | xargs -r scancel --full --quiet 2> /dev/null || true
        for _ in $(seq 60); do
            [[ -z $(squeue -h -o %i 2> /dev/null) ]] && break
            sleep 0.5
        done
    fi
    stop "$RUN/slurmd.pid" slurmd
    stop "$RUN/slurmctld.pid" slurmctld
    stop "$RUN/slurmdbd.pid" slurmdbd
    stop "$RUN/mysqld.pid" MariaDB
    if [[ -e $RUN/munged.ours ]]; then
        stop /run/munge/munged.pid munged
        rm -f "$RUN/munged.ours"
    fi
    say "down"
}

status() {
    local name pidfile running=0
    for name in munged mysqld slurmdbd slurmctld slurmd; do
        pidfile=$RUN/$name.pid
        [[ $name == munged ]] && pidfile=/run/munge/munged.pid
        if alive "$pidfile"; then
            echo "$name: running (pid $(cat "$pidfile"))"
            running=$((running + 1))
        else
            echo "$name: stopped"
        fi
    done
    [[ $running == 5 ]] || return 3
    sinfo -o "%P %a %D %c %m %T %N"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    conf) gpus=$(gpu_count); slurm_conf "$gpus"; gres_conf "$gpus" ;;
    *) die "usage: $0 up|down|status|conf" ;;
esac
