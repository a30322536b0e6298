#!/usr/bin/env bash
# `make fuzz-api`: schemathesis generates requests from docs/openapi.yaml against the local
# gateway on a throw-away stack. Fails on any 5xx or any response that breaks the spec.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
infra/tools.sh fuzz
# shellcheck disable=SC2016
exec infra/with-gateway.sh bash -c '
  curl -fsS -X POST "$BASE_URL/tenants/$TENANT_ID/templates" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H "Content-Type: application/json" -d "{\"key\":\"welcome\",\"body\":\"Hi {{name}}\"}" >/dev/null
  .venv-tools/bin/schemathesis run docs/openapi.yaml --url "$BASE_URL" \
    --header "Authorization: Bearer $ADMIN_TOKEN" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --max-examples "${FUZZ_EXAMPLES:-40}" --seed 1 --no-color "$@"' fuzz "$@"
