#!/usr/bin/env python3
"""Cold start of each function: process start to its first answered invocation.

Serves the Lambda Runtime API itself (the protocol `cargo lambda watch` and AWS speak:
GET .../invocation/next hands out the event, POST .../invocation/<id>/response takes the
answer), starts the release binary against it and times spawn → response. Run inside a
stack's environment (infra/with-stack.sh), after
`cargo build --release -p register -p templates -p flows -p webhook -p send -p sender -p forwarder -p relay -p admin`.

    infra/with-stack.sh python3 infra/coldstart.py [--runs N]

The functions share one database, `coldstart`: on a fresh stack the first run of the first
function creates the indexes (its `max`), every later one finds them marked, as a deployed
function does after the first cold start.
"""

import argparse
from urllib.parse import urlsplit, urlunsplit
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def http_event(method, path, headers=None, body=None):
    """An API Gateway HTTP API (v2) request, as the functions receive it."""
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "coldstart"},
            "requestId": str(uuid.uuid4()),
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "24/Nov/2026:00:00:00 +0000",
            "timeEpoch": int(time.time() * 1000),
        },
        "body": body,
        "isBase64Encoded": False,
    }


def first_requests(admin_token):
    """Each function's first request: one its routes serve that reaches the database (a
    tenant that does not exist is looked up and answered 404), so the figure includes the
    database connection; the admin UI serves static files only."""
    auth = {"authorization": f"Bearer {admin_token}"}
    nobody = "/tenants/000000000000000000000000"
    webhook = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp",
                                        "metadata": {"phone_number_id": "1000000000001"},
                                        "statuses": [{"id": "wamid.cold", "status": "sent"}]}}]}]})
    return {
        "register": (http_event("GET", "/tenants", auth), 200),
        "templates": (http_event("GET", f"{nobody}/templates", auth), 404),
        "flows": (http_event("GET", f"{nobody}/flows", auth), 404),
        "webhook": (http_event("POST", "/whatsapp/webhook", body=webhook), 200),
        "send": (http_event("GET", f"{nobody}/messages", auth), 404),
        "admin": (http_event("GET", "/admin"), 200),
        "sender": ({"Records": []}, None),
        "forwarder": ({"Records": []}, None),
        "relay": ({"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                   "source": "aws.events", "time": "2026-11-24T00:00:00Z", "detail": {}}, None),
    }


class Runtime:
    """One invocation's worth of the Lambda Runtime API."""

    def __init__(self, event):
        self.event = json.dumps(event).encode()
        self.request_id = str(uuid.uuid4())
        self.handed_out = False
        self.answered = threading.Event()
        self.answer = None
        self.answered_at = None
        self.failed = None
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.endswith("/invocation/next"):
                    self.send_error(404)
                    return
                if runtime.handed_out:
                    runtime.answered.wait(60)
                    time.sleep(60)
                    return
                runtime.handed_out = True
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", runtime.request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 "arn:aws:lambda:us-east-1:123456789012:function:coldstart")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(runtime.event)))
                self.end_headers()
                self.wfile.write(runtime.event)

            def do_POST(self):
                at = time.perf_counter()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.endswith("/response"):
                    runtime.answer = body
                else:
                    runtime.failed = body.decode(errors="replace") or self.path
                runtime.answered_at = at
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                runtime.answered.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self):
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run_once(binary, name, event, expected, logs):
    runtime = Runtime(event)
    env = dict(os.environ,
               AWS_LAMBDA_RUNTIME_API=runtime.address,
               AWS_LAMBDA_FUNCTION_NAME=name,
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
               AWS_LAMBDA_LOG_STREAM_NAME="coldstart",
               AWS_LAMBDA_LOG_GROUP_NAME="coldstart",
               LOG_LEVEL="warn")
    with open(logs / f"{name}.log", "ab") as log:
        started = time.perf_counter()
        process = subprocess.Popen([str(binary)], env=env, stdout=log, stderr=log, cwd=logs)
        try:
            if not runtime.answered.wait(20):
                return None, "no answer in 20 s"
            if runtime.failed:
                return None, f"error: {runtime.failed[:200]}"
            ms = (runtime.answered_at - started) * 1000
            if expected is not None:
                answer = json.loads(runtime.answer or b"{}")
                if answer.get("statusCode") != expected:
                    return None, f"status {answer.get('statusCode')}: {str(answer.get('body'))[:200]}"
            return ms, None
        finally:
            process.kill()
            process.wait()
            runtime.close()


def zip_size(binary):
    """The deployment package's size: the binary as `bootstrap` in a deflated zip, as
    `cargo lambda build --output-format zip` packs it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(binary, "bootstrap")
    return len(buffer.getvalue())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
    os.environ.setdefault("APP_ENV", "development")
    os.environ.setdefault("ADMIN_TOKEN", "coldstart-admin")
    # No APP_SECRET (`make bench` exports one for its load): development accepts the
    # webhook's unsigned first request.
    os.environ.pop("APP_SECRET", None)
    # A database of its own: after `make bench`'s load the stack's holds thousands of
    # messages, and the relay's first pass would time the local stand-in's scan of them.
    uri = urlsplit(os.environ["MONGO_URI"])
    os.environ["MONGO_URI"] = urlunsplit(uri._replace(path="/coldstart"))
    os.environ.setdefault("VERIFY_TOKEN", "coldstart-verify")
    requests = first_requests(os.environ["ADMIN_TOKEN"])
    logs = Path(tempfile.mkdtemp(prefix="coldstart."))
    print("| function | binary (bytes, stripped) | zip (MB) | first request | cold start median ms | min | max |")
    print("|---|---:|---:|---|---:|---:|---:|")
    failed = False
    for name, (event, expected) in requests.items():
        binary = target / name
        if not binary.exists():
            print(f"| {name} | — | — | — | not built | | |")
            failed = True
            continue
        times, errors = [], []
        for _ in range(args.runs):
            ms, error = run_once(binary, name, event, expected, logs)
            if error:
                errors.append(error)
            else:
                times.append(ms)
        what = event.get("routeKey", "SQS batch" if name in ("sender", "forwarder") else "schedule")
        size = binary.stat().st_size
        zipped = zip_size(binary) / 1e6
        if errors:
            failed = True
            print(f"| {name} | {size:,} | {zipped:.1f} | {what} | failed: {errors[0]} | | |")
            continue
        print(f"| {name} | {size:,} | {zipped:.1f} | {what} | {statistics.median(times):.1f} | "
              f"{min(times):.1f} | {max(times):.1f} |")
    if failed:
        print(f"logs: {logs}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
