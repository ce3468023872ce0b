"""A tiny IMDSv2 stand-in for the node bootstrap tests (run as a script inside a test's network namespace).

Serves ``PUT /latest/api/token`` and, with that token, ``GET /latest/meta-data/network/interfaces/macs/...``
from a JSON file: ``{"<mac>": {"device-number": "1", "ipv4-prefix": "10.0.96.16/28", ...}}``. A missing key is a
404, as on EC2. Usage: fake_imds.py PORT DATA_JSON
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

TOKEN = "eksnet-test-token"
PREFIX = "/latest/meta-data/network/interfaces/macs/"


class Handler(BaseHTTPRequestHandler):
    data: dict = {}

    def _send(self, code: int, body: str = "") -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def do_PUT(self):  # noqa: N802
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self._send(200, TOKEN)
        else:
            self._send(400)

    def do_GET(self):  # noqa: N802
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            return self._send(401)
        if self.path == PREFIX:
            return self._send(200, "\n".join(f"{mac}/" for mac in self.data))
        if self.path.startswith(PREFIX):
            mac, _, key = self.path[len(PREFIX):].partition("/")
            value = self.data.get(mac, {}).get(key)
            if value is not None:
                return self._send(200, value)
        self._send(404)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    Handler.data = json.loads(open(sys.argv[2]).read())
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
