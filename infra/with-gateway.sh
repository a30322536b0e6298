#!/usr/bin/env bash
# Runs a command against a local gateway on a throw-away stack (infra/with-stack.sh), with BASE_URL and
# ADMIN_TOKEN exported (and a registered tenant in TENANT_ID). Used by `make fuzz-api`
# and `make test-ui`.   infra/with-gateway.sh CMD [ARGS...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
[ -n "${STACK_DIR:-}" ] || STAGE=gw exec infra/with-stack.sh "$0" "$@"
work="$STACK_DIR"
gateway=""
graph=""
trap '[ -n "$gateway" ] && kill "$gateway" 2>/dev/null; [ -n "$graph" ] && kill "$graph" 2>/dev/null; true' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
# Graph stays local: a stand-in that refuses every token as Meta refuses a made-up one.
graph_port="$(free_port)"
python3 "$root/infra/graph_stub.py" "$graph_port" &
graph=$!
export PORT="$port" ADMIN_TOKEN=local-admin-token APP_SECRET=local-app-secret VERIFY_TOKEN=local-verify META_APP_ID=1000000001 \
  APP_ENV=development LOG_LEVEL=warn WHATSAPP_API_BASE="http://127.0.0.1:$graph_port"
cargo build --quiet -p local-gateway
"${CARGO_TARGET_DIR:-$root/target}/debug/local-gateway" >"$work/gateway.log" 2>&1 &
gateway=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 || { echo "[gateway] did not start:" >&2; cat "$work/gateway.log" >&2; exit 1; }
export BASE_URL="http://127.0.0.1:$port"
TENANT_ID="$(curl -fsS -X POST "$BASE_URL/tenants/register" -H "Authorization: Bearer $ADMIN_TOKEN" \
  -H 'Content-Type: application/json' -d '{"name":"Demo Coffee","phoneNumberId":"1555000999","accessToken":"mock_demo"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenant"]["id"])')"
export TENANT_ID
set +e
"$@"
rc=$?
set -e
if grep -q 'status=5[0-9][0-9]' "$work/gateway.log"; then
  echo "[gateway] 5xx responses were logged:" >&2; grep 'status=5' "$work/gateway.log" | head >&2; rc=1
fi
exit $rc
