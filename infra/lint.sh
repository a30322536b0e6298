#!/usr/bin/env bash
# `make lint`: formatting, clippy with warnings as errors, and the SAM template checks.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
infra/tools.sh lint
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" SAM_CLI_TELEMETRY=0
.venv-tools/bin/cfn-lint template.yaml
.venv-tools/bin/sam validate --lint --template-file template.yaml
echo "[lint] clean" >&2
