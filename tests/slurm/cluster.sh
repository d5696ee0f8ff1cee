#!/usr/bin/env bash
# A single-node Slurm cluster on localhost for the Slurm sweep test (issue 25): munged,
# slurmctld and slurmd from Debian's packages (slurmctld, slurmd, slurm-client, munge), every file of theirs in
# DIR, on ports of their own, so that nothing of the machine's is touched.
#   cluster.sh start DIR   # prints `export SLURM_CONF=DIR/slurm.conf`; non-zero when it cannot start
#   cluster.sh stop DIR    # stops what start started (idempotent)
# start exits 3 with a reason on stderr when a piece is missing (the test then skips), 1
# when the daemons were there but the cluster did not come up.
set -uo pipefail
cmd=${1:?start or stop} dir=${2:?DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

stop() {
  for name in slurmd slurmctld munged; do
    if [ -f "$dir/$name.pid" ]; then
      pid=$(cat "$dir/$name.pid")
      kill "$pid" 2> /dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2> /dev/null || true
      rm -f "$dir/$name.pid"
    fi
  done
  # Jobs' processes left by a killed slurmd (slurmstepd) belong to this cluster only.
  pkill -f "slurmstepd.*$dir" 2> /dev/null || true
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi
[ "$cmd" = start ] || { echo "cluster.sh: unknown command '$cmd'" >&2; exit 2; }

for tool in munged mungekey slurmctld slurmd sbatch squeue scancel; do
  command -v "$tool" > /dev/null || [ -x "/usr/sbin/$tool" ] ||
    { echo "$tool not found: install slurmctld, slurmd, slurm-client and munge (scripts/setup.sh)" >&2; exit 3; }
done
export PATH="$PATH:/usr/sbin"
if [ "$(id -u)" -ne 0 ]; then
  echo "not root: slurmd must run as root to start jobs as their user" >&2
  exit 3
fi

# Free ports: slurmctld's and slurmd's, picked from the test's folder so that two
# clusters on one machine do not meet.
base=$((20000 + $(printf '%s' "$dir" | cksum | cut -d' ' -f1) % 20000))
cpus=$(nproc)
mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2))
mkdir -p "$dir/spool" "$dir/state" "$dir/munge"
chmod 700 "$dir/munge"
mungekey --create --keyfile="$dir/munge/munge.key" --force 2> "$dir/mungekey.log" ||
  { echo "mungekey failed: $(cat "$dir/mungekey.log")" >&2; exit 3; }
chmod 600 "$dir/munge/munge.key"
munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" \
  --log-file="$dir/munged.log" --seed-file="$dir/munge/munge.seed" --force 2>> "$dir/munged.log" ||
  { echo "munged did not start: $(tail -3 "$dir/munged.log")" >&2; stop; exit 3; }

cat > "$dir/slurm.conf" <<CONF
ClusterName=attnbench-test
SlurmctldHost=localhost
SlurmctldPort=$base
SlurmdPort=$((base + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge=600
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$dir/slurm.conf
slurmctld -f "$dir/slurm.conf" -i 2>> "$dir/slurmctld.log" || { echo "slurmctld did not start: $(tail -3 "$dir/slurmctld.log")" >&2; stop; exit 3; }
slurmd -f "$dir/slurm.conf" -N localhost 2>> "$dir/slurmd.log" || { echo "slurmd did not start: $(tail -3 "$dir/slurmd.log")" >&2; stop; exit 3; }
for _ in $(seq 100); do
  if sinfo -h -N -o '%T' 2> /dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "export SLURM_CONF=$dir/slurm.conf"
    exit 0
  fi
  sleep 0.2
done
echo "the node did not come up within 20 s: $(sinfo -N 2>&1 | tail -2); slurmctld.log: $(tail -3 "$dir/slurmctld.log"); slurmd.log: $(tail -3 "$dir/slurmd.log")" >&2
stop
exit 1
