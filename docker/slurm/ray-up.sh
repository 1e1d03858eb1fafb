# shellcheck shell=bash
# Ray cluster bring-up for batch jobs: source this file, then
#
#   ray_head_start NODE IP PORT [ray start options...]   # Ray head on NODE, GCS at IP:PORT
#   ray_worker_start NODE IP:PORT [ray start options...]  # a worker node joining that head
#   ray_wait_nodes IP:PORT N [TIMEOUT_S]                  # block until N nodes are alive
#   ray_stop [GRACE_S]                                    # stop exactly the nodes started here
#
# Each node runs `ray start --block` in the background, launched through $RAY_UP_LAUNCH
# (word-split; `NODE` in it is replaced by the node name). Under Slurm that is
#   RAY_UP_LAUNCH="srun --nodes=1 --ntasks=1 --overlap -w NODE"
# and empty (run here) in the local test, so both run the same `ray start` command lines.
# ray_stop signals the processes it recorded (never `ray stop`, which would kill every
# Ray instance of this user on the machine).
#
# Authentication: every node and the driver must share one token. Unless RAY_AUTH_MODE is
# already set, token auth is used with a fresh per-job token in RAY_AUTH_TOKEN (unless one is
# set), exported so that srun steps and the driver inherit it; no file in ~/.ray is read or
# written, so concurrent jobs and other Ray instances of the same user do not interfere.

RAY_UP_DIR=${RAY_UP_DIR:-${TMPDIR:-/tmp}/ray-up-$$}
RAY_UP_PIDS=()

_ray_up_log() { printf '[ray-up %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

_ray_up_auth() {
  mkdir -p "$RAY_UP_DIR"
  export RAY_AUTH_MODE=${RAY_AUTH_MODE:-token}
  if [[ $RAY_AUTH_MODE == token && -z ${RAY_AUTH_TOKEN:-} ]]; then
    RAY_AUTH_TOKEN=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
    export RAY_AUTH_TOKEN
  fi
}

# _ray_up_spawn NODE LOGNAME CMD... : run CMD on NODE in the background, remember its pid.
_ray_up_spawn() {
  local node=$1 log=$2
  shift 2
  local -a launch=()
  if [[ -n ${RAY_UP_LAUNCH:-} ]]; then
    read -r -a launch <<<"${RAY_UP_LAUNCH//NODE/$node}"
  fi
  "${launch[@]}" "$@" >"$RAY_UP_DIR/$log.log" 2>&1 &
  RAY_UP_PIDS+=("$!")
  _ray_up_log "started $log on $node (pid $!, log $RAY_UP_DIR/$log.log)"
}

ray_head_start() {
  local node=$1 ip=$2 port=$3
  shift 3
  _ray_up_auth
  _ray_up_spawn "$node" head \
    ray start --head --block --node-ip-address="$ip" --port="$port" \
    --include-dashboard=false --disable-usage-stats "$@"
}

ray_worker_start() {
  local node=$1 address=$2
  shift 2
  _ray_up_auth
  _ray_up_spawn "$node" "worker-$node-${#RAY_UP_PIDS[@]}" \
    ray start --block --address="$address" --disable-usage-stats "$@"
}

# ray_wait_nodes HOST:PORT N [TIMEOUT_S]: 0 once N nodes are alive; 1 after TIMEOUT_S (default 300).
ray_wait_nodes() {
  local address=$1 want=$2 timeout=${3:-300} start=$SECONDS have=0 pid
  while ((SECONDS - start < timeout)); do
    for pid in "${RAY_UP_PIDS[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        _ray_up_log "a Ray node process ($pid) exited; see $RAY_UP_DIR/*.log"
        return 1
      fi
    done
    have=$(ray status --address="$address" 2>/dev/null | grep -cE '^ +[0-9]+ node_' || true)
    if ((have >= want)); then
      _ray_up_log "$have/$want Ray nodes up at $address"
      return 0
    fi
    sleep 2
  done
  _ray_up_log "timed out after ${timeout}s with $have/$want Ray nodes at $address"
  return 1
}

# ray_stop [GRACE_S]: SIGTERM the recorded node processes, workers first and the head last. Each
# node drains for up to 30 s (after a Ray Data job the head waits for its detached actors);
# SIGKILL any that outlive GRACE_S (the `ray start --block` reaper then ends its Ray processes).
ray_stop() {
  local grace=${1:-40} i pid start
  ((${#RAY_UP_PIDS[@]})) || return 0
  _ray_up_log "stopping ${#RAY_UP_PIDS[@]} Ray node(s)"
  for ((i = ${#RAY_UP_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${RAY_UP_PIDS[i]}
    kill -TERM "$pid" 2>/dev/null || continue
    start=$SECONDS
    while kill -0 "$pid" 2>/dev/null && ((SECONDS - start < grace)); do
      sleep 0.5
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  RAY_UP_PIDS=()
  _ray_up_log "Ray stopped"
}
