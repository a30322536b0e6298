#!/usr/bin/env bash
# `make dlq` / `make redrive`. Uses SEND_QUEUE_URL / SEND_DLQ_URL and the AWS environment;
# without them, the running `make dev` stack's (from its state dir).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
. infra/env.sh
load_dotenv "$root/.env"
dev_env="${DEV_DIR:-$root/.dev}/env"
if [ -z "${SEND_DLQ_URL:-}" ] && [ -f "$dev_env" ]; then
  . "$dev_env"
fi
exec cargo run --quiet -p local-gateway --bin dlq -- "$@"
