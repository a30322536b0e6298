#!/usr/bin/env bash
# `make bench`: the criterion bench of the webhook's CPU path, the sender load bench, then
# an HTTP load against a release build of the local gateway and the CPU one round trip of
# each kind costs (`load floor`), then each function's cold start, all on a throw-away
# local stack.
#
#   BENCH_ONLY=load      only the HTTP load (skips the criterion benches)
#   BENCH_REQUESTS=N     requests of every HTTP load run (default 500 at concurrency 1,
#                        2,000 at 8 and 32)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
[ -n "${STACK_DIR:-}" ] || STAGE=bench exec infra/with-stack.sh "$0" "$@"
if [ "${BENCH_ONLY:-}" != load ]; then
  cargo bench -p shared --bench webhook
  cargo bench -p e2e --bench sender
fi

# ---- HTTP load: infra/gateway/src/bin/load.rs -------------------------------------------
# Release build: the Lambda profile (Cargo.toml [profile.release]), so the figures are
# those of the deployed code, not of a debug build.
cargo build --release -p local-gateway --bins
bin="${CARGO_TARGET_DIR:-$root/target}/release"
load="$bin/load"
work="$STACK_DIR"
gateway=""
graph=""
trap '[ -n "$gateway" ] && kill "$gateway" 2>/dev/null; [ -n "$graph" ] && kill "$graph" 2>/dev/null; true' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # url log name
  for _ in $(seq 1 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "[bench] $3 did not start:" >&2; cat "$2" >&2; exit 1
}

graph_port="$(free_port)"
graph_url="http://127.0.0.1:$graph_port"
"$load" graph --port "$graph_port" >"$work/graph.log" 2>&1 &
graph=$!
wait_for "$graph_url/count" "$work/graph.log" "the Graph stand-in"

port="$(free_port)"
base="http://127.0.0.1:$port"
export ADMIN_TOKEN=bench-admin-token APP_SECRET=bench-app-secret
# As infra/with-gateway.sh, and:
# - RELAY_INTERVAL_SECS=0: the relay's pass over the outbox is per minute, not per message,
#   and would land in whichever run it happens to fall into;
# - run from the stack directory, so a developer's .env in the repository cannot change
#   the settings being measured.
(
  cd "$work"
  PORT="$port" VERIFY_TOKEN=bench-verify APP_ENV=development LOG_LEVEL=warn \
    WHATSAPP_API_BASE="$graph_url" RELAY_INTERVAL_SECS=0 exec "$bin/local-gateway"
) >"$work/gateway.log" 2>&1 &
gateway=$!
wait_for "$base/health" "$work/gateway.log" "the gateway"

number=155500000000001
# Registers the tenant, lifts its pacing (see `setup` in load.rs) and builds its bot.
"$load" setup --base "$base" --admin-token "$ADMIN_TOKEN" --phone-number-id "$number" \
  --graph "$graph_url" >/dev/null

run() { # label concurrency requests
  "$load" run --base "$base" --app-secret "$APP_SECRET" --phone-number-id "$number" \
    --concurrency "$2" --requests "$3" --customers 1000 --graph "$graph_url" \
    --gateway-pid "$gateway" --mongo-uri "$MONGO_URI" --redis-url "$REDIS_URL" --label "$1"
}
# Warm-up, not reported: connection pools, caches (tenant, bot, token), Redis scripts,
# the first 200 customers' documents.
run warm 8 200 >/dev/null
echo
echo "HTTP load: release local-gateway, 1,000 customers, webhook posts until every reply reached Graph"
echo
"$load" header
run c1 1 "${BENCH_REQUESTS:-500}"
run c8 8 "${BENCH_REQUESTS:-2000}"
run c32 32 "${BENCH_REQUESTS:-2000}"
if grep -q 'status=5[0-9][0-9]' "$work/gateway.log"; then
  echo "[bench] the gateway logged 5xx responses:" >&2; grep 'status=5' "$work/gateway.log" | head >&2
  exit 1
fi

# What the functions' clients spend on one round trip of each kind, and the sum over an
# answered message's round trips: the part of the runs' functions CPU that is not the
# message's own work (a queue of its own, which nothing consumes).
floor_queue="$("${TOOLS_VENV:-$root/.venv-tools}/bin/python" -c \
  'import boto3, os; print(boto3.client("sqs", region_name=os.environ.get("AWS_REGION", "us-east-1")).create_queue(QueueName="wa-floor-bench")["QueueUrl"])')"
echo
echo "Round-trip floor: CPU per round trip (load floor, 2,000 in a row of each kind)"
echo
"$load" floor --base "$base" --gateway-pid "$gateway" --graph "$graph_url" \
  --queue-url "$floor_queue" --phone-number-id "$number"

# ---- Cold start: infra/coldstart.py -------------------------------------------------------
# Each function's release binary under an emulated Lambda Runtime API: process start to its
# first answered invocation (the gateway and its pollers stopped first, so they do not share
# the CPU).
kill "$gateway" "$graph" 2>/dev/null || true
gateway=""
graph=""
cargo build --release -p register -p templates -p flows -p webhook -p send -p sender -p forwarder -p relay -p admin
echo
echo "Cold start: process start to the first answered invocation (median of 7)"
echo
python3 infra/coldstart.py --runs 7
