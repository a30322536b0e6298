#!/usr/bin/env bash
# `make bench`: the criterion bench of the webhook's CPU path, then the sender load bench
# against a throw-away local stack.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
[ -n "${STACK_DIR:-}" ] || STAGE=bench exec infra/with-stack.sh "$0" "$@"
cargo bench -p shared --bench webhook
cargo bench -p e2e --bench sender
