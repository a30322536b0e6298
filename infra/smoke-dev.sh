#!/usr/bin/env bash
# Proves the README's first command: `make dev` starts, serves /health and a registration,
# and SIGTERM stops every process it started. Runs under `make test` (own state dir, own port).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
dir="$(mktemp -d "${TMPDIR:-/tmp}/wa-dev-smoke.XXXXXX")"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
out="$dir/make-dev.log"
fail() { echo "[smoke] FAIL: $*" >&2; sed 's/^/[smoke]   /' "$out" >&2 || true; exit 1; }

# A fresh environment, as a newcomer has: no stack variables inherited.
env -u MONGO_URI -u REDIS_URL -u AWS_ENDPOINT_URL -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
  -u SEND_QUEUE_URL -u SEND_DLQ_URL -u EVENTS_QUEUE_URL -u EVENTS_DLQ_URL -u KMS_KEY_ID -u MEDIA_BUCKET \
  DEV_DIR="$dir/state" PORT="$port" ADMIN_TOKEN=smoke-admin \
  setsid make dev >"$out" 2>&1 &
pid=$!
cleanup() { kill -TERM -- "-$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

for _ in $(seq 1 600); do
  grep -q '^ready: ' "$out" && break
  kill -0 "$pid" 2>/dev/null || fail "make dev exited early"
  sleep 0.2
done
grep -q '^ready: ' "$out" || fail "make dev not ready"

health="$(curl -fsS "http://127.0.0.1:$port/health")" || fail "GET /health"
[ "$health" = '{"ok":true}' ] || fail "health answered $health"
code="$(curl -s -o "$dir/reg.json" -w '%{http_code}' -X POST "http://127.0.0.1:$port/tenants/register" \
  -H 'Authorization: Bearer smoke-admin' -H 'Content-Type: application/json' \
  -d '{"name":"Smoke","phoneNumberId":"1555000111","accessToken":"EAAsmoke"}')"
[ "$code" = 201 ] || fail "register answered $code: $(cat "$dir/reg.json")"

# End to end through the queue shim and the sender (mock_ token: no Graph call).
code="$(curl -s -o "$dir/reg2.json" -w '%{http_code}' -X POST "http://127.0.0.1:$port/tenants/register" \
  -H 'Authorization: Bearer smoke-admin' -H 'Content-Type: application/json' \
  -d '{"name":"Smoke mock","phoneNumberId":"1555000222","accessToken":"mock_smoke"}')"
[ "$code" = 201 ] || fail "register (mock token) answered $code"
tenant="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tenant"]["id"])' "$dir/reg2.json")"
# The customer writes first: free-form sends reach only customers inside their 24-hour window
# (make dev has no APP_SECRET, so the webhook takes unsigned bodies).
now="$(date +%s)"
code="$(curl -s -o "$dir/inbound.json" -w '%{http_code}' -X POST "http://127.0.0.1:$port/whatsapp/webhook" \
  -H 'Content-Type: application/json' \
  -d '{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000222","phone_number_id":"1555000222"},"contacts":[{"profile":{"name":"Smoke"},"wa_id":"15550001111"}],"messages":[{"from":"15550001111","id":"wamid.smoke'"$now"'","timestamp":"'"$now"'","type":"text","text":{"body":"hello"}}]}}]}]}')"
[ "$code" = 200 ] || fail "inbound answered $code: $(cat "$dir/inbound.json")"
code="$(curl -s -o "$dir/send.json" -w '%{http_code}' -X POST "http://127.0.0.1:$port/tenants/$tenant/send" \
  -H 'Authorization: Bearer smoke-admin' -H 'Content-Type: application/json' \
  -d '{"to":"+15550001111","text":"hello from make dev"}')"
[ "$code" = 202 ] || fail "send answered $code: $(cat "$dir/send.json")"
delivered=""
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/tenants/$tenant/messages?status=sent" -H 'Authorization: Bearer smoke-admin' | grep -q '"status":"sent"'; then
    delivered=1; break
  fi
  sleep 0.2
done
[ -n "$delivered" ] || fail "the queued message was not delivered by the sender"
DEV_DIR="$dir/state" make --no-print-directory dlq >"$dir/dlq.log" 2>&1 || fail "make dlq: $(cat "$dir/dlq.log")"
grep -q '^0 message(s)' "$dir/dlq.log" || fail "make dlq printed: $(cat "$dir/dlq.log")"

stack_pids="$(cat "$dir"/state/*.pid)"
kill -TERM -- "-$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "make dev did not stop on SIGTERM"
# make itself exits at once; dev.sh's trap then stops the gateway and the stack.
for p in $stack_pids; do
  for _ in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && fail "stack process $p left running"
done
echo "[smoke] make dev: ready, /health ok, register 201, send delivered, make dlq ok, clean stop" >&2
