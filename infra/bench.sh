#!/usr/bin/env bash
# `make bench`: the criterion bench of the webhook's CPU path, then the sender load bench
# against a throw-away local stack.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
stack="$(mktemp -d "${TMPDIR:-/tmp}/wa-bench-stack.XXXXXX")"
cleanup() { infra/stack.sh stop "$stack"; rm -rf "$stack"; }
trap cleanup EXIT
unset MONGO_URI REDIS_URL AWS_ENDPOINT_URL AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
  SEND_QUEUE_URL SEND_DLQ_URL KMS_KEY_ID
STAGE=bench infra/stack.sh start "$stack" --ephemeral
. "$stack/env"
cargo bench -p shared --bench webhook
cargo bench -p e2e --bench sender
