"""A node's way to the demo's EC2: an HTTP forwarder listening inside the node's network namespace on
127.0.0.1, relaying each request to moto's server (on the host's loopback) and recording the API action.

The node's IPAM daemon gets it as ``AWS_ENDPOINT_URL_EC2`` (botocore honours the variable). The record is how the
demo counts the EC2 calls a pod's start path makes: whatever the daemon asks EC2 goes through here.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from node_runtime.lab import listening_socket

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host"}


class NodeEndpoint:
    def __init__(self, namespace: str, upstream_port: int, port: int) -> None:
        self.namespace, self.upstream_port, self.port = namespace, upstream_port, port
        self.calls: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def actions_between(self, start: float, end: float) -> list[str]:
        with self._lock:
            return [a for t, a in self.calls if start <= t <= end]

    def start(self) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                query = urllib.parse.parse_qs(body.decode(errors="replace"))
                query.update(urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query))
                action = (query.get("Action") or [self.headers.get("X-Amz-Target", "?")])[0]
                with endpoint._lock:
                    endpoint.calls.append((time.monotonic(), action))
                conn = http.client.HTTPConnection("127.0.0.1", endpoint.upstream_port, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    headers["Host"] = f"127.0.0.1:{endpoint.upstream_port}"
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _relay  # noqa: N815

            def log_message(self, *args):
                pass

        sock = listening_socket(self.namespace, "127.0.0.1", self.port)
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, name=f"ec2-{self.namespace}", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
