#!/usr/bin/env bash
# Local stack on 127.0.0.1: SecantusDB (MongoDB), redis-server, moto (SQS + KMS), then the
# send queue + DLQ and the KMS key. A MONGO_URI / REDIS_URL / AWS endpoint or credentials
# already in the environment are used instead of starting the local part.
#
#   infra/stack.sh start DIR [--ephemeral]   start; writes DIR/env (source it), DIR/*.pid, DIR/logs
#   infra/stack.sh stop DIR                  stop what DIR/*.pid names
#
# Ports are free ones picked at start, so a test stack never collides with `make dev`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${TOOLS_VENV:-$root/.venv-tools}"
cmd="${1:-}"; dir="${2:-}"; mode="${3:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR [--ephemeral]" >&2; exit 2; }
mkdir -p "$dir/logs"
dir="$(cd "$dir" && pwd)"
log() { printf '[stack] %s\n' "$*" >&2; }

stop() {
  # TERM everything at once, then give them 5 s together before KILL.
  local f pid pids=()
  for f in "$dir"/*.pid; do
    [ -e "$f" ] || continue
    pid="$(cat "$f")"
    kill "$pid" 2>/dev/null && pids+=("$pid")
    rm -f "$f"
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}

free_port() {
  "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # name port
  local i
  for i in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "$1 did not open port $2; see $dir/logs/$1.log"; tail -20 "$dir/logs/$1.log" >&2 || true
  exit 1
}

spawn() { # name cmd...
  local name="$1"; shift
  setsid "$@" >"$dir/logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$dir/$name.pid"
}

start() {
  "$root/infra/tools.sh" stack
  stop
  local env_file="$dir/env"; : >"$env_file"
  put() { printf 'export %s=%q\n' "$1" "$2" >>"$env_file"; export "$1=$2"; }

  if [ -n "${MONGO_URI:-}" ]; then
    log "MongoDB: using MONGO_URI from the environment"
  else
    local port storage
    port="$(free_port)"
    if [ "$mode" = --ephemeral ]; then storage=":memory:"; else storage="$dir/mongo"; mkdir -p "$storage"; fi
    spawn mongo "$venv/bin/secantusd-py" --host 127.0.0.1 --port "$port" --storage-path "$storage" --standalone --log-level WARNING
    wait_port mongo "$port"
    put MONGO_URI "mongodb://127.0.0.1:$port/whatsapp?directConnection=true"
    log "MongoDB (SecantusDB) on 127.0.0.1:$port"
  fi

  if [ -n "${REDIS_URL:-}" ]; then
    log "Redis: using REDIS_URL from the environment"
  else
    local port
    port="$(free_port)"
    spawn redis redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no
    wait_port redis "$port"
    put REDIS_URL "redis://127.0.0.1:$port"
    log "Redis on 127.0.0.1:$port"
  fi

  if [ -n "${AWS_ENDPOINT_URL:-}" ] || { [ -z "${AWS_ENDPOINT_URL:-}" ] && { [ -n "${AWS_PROFILE:-}" ] || [ -n "${AWS_ACCESS_KEY_ID:-}" ]; } && [ "${AWS_ACCESS_KEY_ID:-}" != test ]; }; then
    log "AWS: using ${AWS_ENDPOINT_URL:-the real AWS account} from the environment"
  else
    local port
    port="$(free_port)"
    spawn moto "$venv/bin/python" "$root/infra/moto_local.py" "$dir/kms-seed" -H 127.0.0.1 -p "$port"
    wait_port moto "$port"
    put AWS_ENDPOINT_URL "http://127.0.0.1:$port"
    put AWS_ACCESS_KEY_ID test
    put AWS_SECRET_ACCESS_KEY test
    log "SQS + KMS (moto) on 127.0.0.1:$port"
  fi
  put AWS_REGION "${AWS_REGION:-us-east-1}"

  # Queues and key: created if missing, reused otherwise.
  "$venv/bin/python" "$root/infra/bootstrap.py" --stage "${STAGE:-local}" >>"$env_file"
  log "environment written to $env_file"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR [--ephemeral]" >&2; exit 2 ;;
esac
