#!/usr/bin/env bash
# `make dev`: local stack + every function behind one port. Ctrl-C / SIGTERM stops it all.
# Settings come from the environment, then `.env`, then the defaults below.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
. infra/env.sh
load_dotenv "$root/.env"
dir="${DEV_DIR:-$root/.dev}"
mkdir -p "$dir"
export APP_ENV="${APP_ENV:-development}" PORT="${PORT:-3000}"

# Local-only credentials, generated once into the git-ignored state dir.
secret_file() { [ -s "$1" ] || (umask 077; head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1"); cat "$1"; }
export ADMIN_TOKEN="${ADMIN_TOKEN:-$(secret_file "$dir/admin-token")}"
export VERIFY_TOKEN="${VERIFY_TOKEN:-$(secret_file "$dir/verify-token")}"

gateway_pid=""
cleanup() {
  # A second Ctrl-C must not interrupt the clean-up half way.
  trap '' INT TERM
  trap - EXIT
  if [ -n "$gateway_pid" ]; then
    # Graceful first (it drains requests and the queue shim), then not longer than 5 s.
    kill "$gateway_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$gateway_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$gateway_pid" 2>/dev/null || true
  fi
  infra/stack.sh stop "$dir"
  echo "[dev] stopped" >&2
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

infra/stack.sh start "$dir"
. "$dir/env"
echo "[dev] building the local gateway" >&2
cargo build --quiet -p local-gateway
target="${CARGO_TARGET_DIR:-$root/target}"
"$target/debug/local-gateway" &
gateway_pid=$!
cat >&2 <<INFO
[dev] API:        http://127.0.0.1:$PORT   (try: curl http://127.0.0.1:$PORT/health)
[dev] admin token in $dir/admin-token, verify token in $dir/verify-token
[dev] MongoDB:    $MONGO_URI
[dev] Redis:      $REDIS_URL
[dev] SQS/KMS:    ${AWS_ENDPOINT_URL:-AWS}   send queue: $SEND_QUEUE_URL
INFO
wait "$gateway_pid"
