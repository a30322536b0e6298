#!/usr/bin/env bash
# Runs a command against a throw-away local stack (free ports, in-memory database), with
# its variables exported and STACK_DIR set; tears the stack down afterwards. It never uses
# a developer's settings or a real account.   infra/with-stack.sh CMD [ARGS...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
stack="$(mktemp -d "${TMPDIR:-/tmp}/wa-stack.XXXXXX")"
cleanup() { infra/stack.sh stop "$stack"; rm -rf "$stack"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
unset MONGO_URI REDIS_URL AWS_ENDPOINT_URL AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
  AWS_SESSION_TOKEN SEND_QUEUE_URL SEND_DLQ_URL EVENTS_QUEUE_URL EVENTS_DLQ_URL KMS_KEY_ID MEDIA_BUCKET ADMIN_TOKEN APP_SECRET VERIFY_TOKEN
STAGE="${STAGE:-test}" infra/stack.sh start "$stack" --ephemeral
. "$stack/env"
export STACK_DIR="$stack"
"$@"
