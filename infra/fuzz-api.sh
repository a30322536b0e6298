#!/usr/bin/env bash
# `make fuzz-api`: schemathesis generates requests from docs/openapi.yaml against the local
# gateway on a throw-away stack. Fails on any 5xx or any response that breaks the spec.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
infra/tools.sh fuzz
work="$(mktemp -d "${TMPDIR:-/tmp}/wa-fuzz.XXXXXX")"
gateway=""
cleanup() { [ -n "$gateway" ] && kill "$gateway" 2>/dev/null; infra/stack.sh stop "$work"; rm -rf "$work"; }
trap cleanup EXIT
unset MONGO_URI REDIS_URL AWS_ENDPOINT_URL AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
  SEND_QUEUE_URL SEND_DLQ_URL KMS_KEY_ID
STAGE=fuzz infra/stack.sh start "$work" --ephemeral
. "$work/env"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export PORT="$port" ADMIN_TOKEN=fuzz-admin-token APP_SECRET=fuzz-app-secret VERIFY_TOKEN=fuzz-verify APP_ENV=production LOG_LEVEL=warn
cargo build --quiet -p local-gateway
"${CARGO_TARGET_DIR:-$root/target}/debug/local-gateway" >"$work/gateway.log" 2>&1 &
gateway=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
# A real tenant, so tenant routes are exercised past the 404.
tenant="$(curl -fsS -X POST "http://127.0.0.1:$port/tenants/register" -H "Authorization: Bearer $ADMIN_TOKEN" \
  -H 'Content-Type: application/json' -d '{"name":"Fuzz","phoneNumberId":"1555000999","accessToken":"mock_fuzz"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenant"]["id"])')"
curl -fsS -X POST "http://127.0.0.1:$port/tenants/$tenant/templates" -H "Authorization: Bearer $ADMIN_TOKEN" \
  -H 'Content-Type: application/json' -d '{"key":"welcome","body":"Hi {{name}}"}' >/dev/null
set +e
.venv-tools/bin/schemathesis run docs/openapi.yaml \
  --url "http://127.0.0.1:$port" \
  --header "Authorization: Bearer $ADMIN_TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --max-examples "${FUZZ_EXAMPLES:-40}" \
  --seed 1 \
  --no-color \
  "$@"
rc=$?
set -e
if grep -q ' 5[0-9][0-9] ' "$work/gateway.log"; then echo "[fuzz] the gateway logged 5xx responses" >&2; rc=1; fi
exit $rc
