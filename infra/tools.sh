#!/usr/bin/env bash
# Installs what the local stack and the lint/build targets need, idempotently:
# a project venv (git-ignored) with pinned Python tools, and redis-server from Debian.
# Usage: infra/tools.sh [stack|lint|build|fuzz|all]   (default: stack)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${TOOLS_VENV:-$root/.venv-tools}"
want="${1:-stack}"

SECANTUSDB_VERSION=0.7.0b3
MOTO_VERSION=5.2.5
WAITRESS_VERSION=3.0.2
CFN_LINT_VERSION=1.58.0
SAM_CLI_VERSION=1.170.0
CARGO_LAMBDA_VERSION=1.9.2
SCHEMATHESIS_VERSION=4.32.5

log() { printf '[tools] %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating venv $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >/dev/null
fi

pip_want() { # name==version ... ; installs only the ones missing
  local installed missing=()
  installed="$("$venv/bin/pip" freeze 2>/dev/null | tr 'A-Z_' 'a-z-')"
  for spec in "$@"; do
    local name="${spec%%==*}"; name="${name%%\[*}"
    local ver="${spec##*==}"
    if ! grep -qx "$name==$ver" <<<"$installed"; then
      missing+=("$spec")
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "pip install ${missing[*]}"
    "$venv/bin/pip" install -q "${missing[@]}"
  fi
}

need_redis() {
  if command -v redis-server >/dev/null 2>&1; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "apt-get install redis-server"
    (apt-get install -y -qq redis-server >/dev/null 2>&1) || {
      apt-get update -qq >/dev/null && apt-get install -y -qq redis-server >/dev/null
    }
    # Debian starts a system instance; the stack runs its own on its own port.
    (service redis-server stop >/dev/null 2>&1 || true)
  else
    log "redis-server is missing: install it (Debian: apt-get install redis-server) or set REDIS_URL"
    exit 1
  fi
}

case "$want" in
  stack) pip_want "secantusdb==$SECANTUSDB_VERSION" "moto[server]==$MOTO_VERSION" "waitress==$WAITRESS_VERSION"; need_redis ;;
  lint)  pip_want "cfn-lint==$CFN_LINT_VERSION" "aws-sam-cli==$SAM_CLI_VERSION" ;;
  fuzz)  pip_want "schemathesis==$SCHEMATHESIS_VERSION" ;;
  build) pip_want "cargo-lambda==$CARGO_LAMBDA_VERSION" "aws-sam-cli==$SAM_CLI_VERSION" ;;
  all)   "$0" stack; "$0" lint; "$0" build; "$0" fuzz ;;
  *) log "unknown target $want"; exit 2 ;;
esac
