#!/usr/bin/env bash
# Proves the README's Lambda dev loop: `cargo lambda watch` emulates the Lambda runtime API
# and `cargo lambda invoke <fn> --data-file events/<fixture>.json` runs a function through
# it. Needs the stack's environment (make test provides it).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
infra/tools.sh build >/dev/null
export PATH="$root/.venv-tools/bin:$PATH"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
log="$(mktemp)"
setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" --ignore-changes >"$log" 2>&1 &
watch=$!
trap 'kill -TERM -- "-$watch" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
# Bounded: `cargo lambda invoke` waits for ever when the function exits instead of answering.
out="$(timeout 300 cargo lambda invoke register --invoke-address 127.0.0.1 --invoke-port "$port" --data-file events/health.json 2>&1)" || {
  echo "[lambda] invoke failed: $out" >&2; tail -30 "$log" >&2; exit 1; }
echo "$out" | grep -q '"statusCode":200' || { echo "[lambda] unexpected answer: $out" >&2; exit 1; }
echo "[lambda] cargo lambda watch + invoke register events/health.json: 200" >&2
