"""A stand-in for Meta's Graph API that refuses every token, as Graph does a made-up one
(HTTP 401, OAuthException 190). infra/with-gateway.sh points the local gateway at it, so a
fuzzed or UI-tested gateway never reaches the real Graph, and a random token is refused
the way Meta would refuse it.   python3 infra/graph_stub.py PORT
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


class Graph(BaseHTTPRequestHandler):
    def refuse(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(REFUSED)))
        self.end_headers()
        self.wfile.write(REFUSED)

    do_GET = do_POST = do_PUT = do_DELETE = refuse

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Graph).serve_forever()
