# Two commands matter: `make dev` (run everything locally) and `make test` (the whole suite
# against a throw-away local stack). See README.md.
.PHONY: dev test test-ui lint build tools dlq redrive bench fuzz-api postman ui-vendor

dev:
	@infra/dev.sh

test:
	@infra/test.sh

# The admin UI in headless Chromium (playwright-core).
test-ui:
	@infra/test-ui.sh

lint:
	@infra/lint.sh

build:
	@infra/tools.sh build
	PATH="$(CURDIR)/.venv-tools/bin:$$PATH" cargo lambda build --release --arm64 --output-format zip --workspace --exclude local-gateway --exclude e2e --exclude shared

tools:
	@infra/tools.sh all

# The send DLQ: list it, or move it back to the send queue (local stack or AWS alike).
dlq:
	@infra/dlq.sh list

redrive:
	@infra/dlq.sh redrive

# Benchmarks (not tests): webhook CPU path (criterion), sender throughput, and an HTTP load
# on a release local gateway (BENCH_ONLY=load: that alone).
bench:
	@infra/bench.sh

# schemathesis against the local gateway, from docs/openapi.yaml: no 5xx, no spec violation.
fuzz-api:
	@infra/fuzz-api.sh

# docs/postman_collection.json from docs/openapi.yaml (a test keeps them in sync).
postman:
	@infra/tools.sh stack && .venv-tools/bin/python infra/postman.py

# The console's browser libraries (uPlot), from npm into the admin function's assets.
ui-vendor:
	cd functions/admin && npm ci --no-audit --no-fund --silent && cp node_modules/uplot/dist/uPlot.iife.min.js src/ui/uplot.js && cp node_modules/uplot/dist/uPlot.min.css src/ui/uplot.css
