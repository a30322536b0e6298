#!/usr/bin/env bash
# `make test`: a throw-away local stack on free ports, the whole suite, teardown.
# The exit code is the suite's.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
stack="$(mktemp -d "${TMPDIR:-/tmp}/wa-test-stack.XXXXXX")"
cleanup() { infra/stack.sh stop "$stack"; rm -rf "$stack"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The suite always runs against its own stack, never a developer's or a real account.
unset MONGO_URI REDIS_URL AWS_ENDPOINT_URL AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
  AWS_SESSION_TOKEN SEND_QUEUE_URL SEND_DLQ_URL KMS_KEY_ID ADMIN_TOKEN APP_SECRET VERIFY_TOKEN
STAGE="test" infra/stack.sh start "$stack" --ephemeral
. "$stack/env"
export APP_ENV=development

echo "[test] building" >&2
cargo build --workspace --all-targets --quiet

echo "[test] make dev smoke test" >&2
infra/smoke-dev.sh
echo "[test] cargo lambda watch + invoke" >&2
infra/lambda-dev-smoke.sh

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
