"""A stand-in for Meta's Graph API that refuses every token, as Graph does a made-up one
(HTTP 401, OAuthException 190). infra/with-gateway.sh points the local gateway at it, so a
fuzzed or UI-tested gateway never reaches the real Graph, and a random token is refused
the way Meta would refuse it.   python3 infra/graph_stub.py PORT

Embedded Signup is played through for codes starting with `stub-`: the code exchange
answers a placeholder business token `stub-business-token-…`, `debug_token` grants WABA 2000000001, which has two
numbers (the second not yet on the Cloud API), and subscribing and registering succeed for
that token. Any other code is refused as Graph refuses a bad one (HTTP 400, code 100).
"""

import json
import secrets
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

REFUSED = json.dumps(
    {
        "error": {
            "message": "Invalid OAuth access token - Cannot parse access token",
            "type": "OAuthException",
            "code": 190,
            "fbtrace_id": "AStubStubStub",
        }
    }
).encode()


BAD_CODE = {"error": {"message": "Invalid verification code format.", "type": "OAuthException", "code": 100,
                       "fbtrace_id": "AStubStubStub"}}
WABA = "2000000001"
NUMBERS = [
    {"id": "2000000011", "display_phone_number": "+1 555-010-0011", "verified_name": "Stub",
     "platform_type": "CLOUD_API", "status": "CONNECTED"},
    {"id": "2000000012", "display_phone_number": "+1 555-010-0012", "verified_name": "Stub",
     "platform_type": "NOT_APPLICABLE", "status": "PENDING"},
]


class Graph(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        url = urlparse(self.path)
        parts = [p for p in url.path.split("/") if p][1:]  # after the version
        query = parse_qs(url.query)
        stub_token = self.headers.get("Authorization", "").startswith("Bearer stub-business-token-")
        if parts == ["oauth", "access_token"]:
            if query.get("code", [""])[0].startswith("stub-"):
                return self.answer(200, {"access_token": "stub-business-token-" + secrets.token_hex(8), "token_type": "bearer"})
            return self.answer(400, BAD_CODE)
        if parts == ["debug_token"] and query.get("input_token", [""])[0].startswith("stub-business-token-"):
            return self.answer(200, {"data": {"granular_scopes": [
                {"scope": "whatsapp_business_management", "target_ids": [WABA]}]}})
        if stub_token and parts == [WABA, "phone_numbers"]:
            return self.answer(200, {"data": NUMBERS})
        if stub_token and self.command == "POST" and parts in ([WABA, "subscribed_apps"], [NUMBERS[1]["id"], "register"]):
            return self.answer(200, {"success": True})
        self.answer(401, REFUSED)

    do_GET = do_POST = do_PUT = do_DELETE = handle_any

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Graph).serve_forever()
