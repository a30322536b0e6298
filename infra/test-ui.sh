#!/usr/bin/env bash
# `make test-ui`: the Template Builder in headless Debian Chromium (playwright-core),
# against the local gateway on a throw-away stack.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get install -y -qq chromium >/dev/null 2>&1) || { apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; }
  else
    echo "[ui] chromium is missing (Debian: apt-get install chromium)" >&2; exit 1
  fi
fi
(cd tests/ui && npm ci --no-audit --no-fund --silent)
exec infra/with-gateway.sh bash -c 'cd tests/ui && node --test --test-concurrency=1'
