#!/usr/bin/env bash
# `make test`: a throw-away local stack on free ports, the whole suite, teardown.
# The exit code is the suite's.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
[ -n "${STACK_DIR:-}" ] || exec infra/with-stack.sh "$0" "$@"
export APP_ENV=development

echo "[test] building" >&2
cargo build --workspace --all-targets --quiet

echo "[test] make dev smoke test" >&2
infra/smoke-dev.sh
echo "[test] cargo lambda watch + invoke" >&2
infra/lambda-dev-smoke.sh

if cargo nextest --version >/dev/null 2>&1; then
  cases=$(cargo nextest list -p e2e --test e2e 2>/dev/null | grep -cE ' crash::.*::(error|panic|hang)$' || true)
  echo "[test] crash matrix: $cases cases (failpoints × error, panic, hang)" >&2
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
