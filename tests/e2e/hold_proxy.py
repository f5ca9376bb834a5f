"""A loopback HTTP proxy in front of moto that HOLDS one chosen request.

`HoldProxy.arm(match, nth=1)` picks the nth request for which
`match(method, path, headers)` is true; when it arrives the proxy sets
`held` and waits (without forwarding) until `release()` is called, then
forwards it unchanged. Every other request is forwarded at once. This makes
races deterministic: a test holds a request, does something else to
completion, then lets the request go; no sleeps.
"""
import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


class HoldProxy:
    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.rule = None
        self.seen = 0
        self.nth = 1
        self.held = threading.Event()
        self.released = threading.Event()
        self.log = []
        # Bucket names whose unsigned requests get 403 AccessDenied (a
        # private mirror using the public names).
        self.deny_unsigned = set()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                hold = False
                with proxy.lock:
                    proxy.log.append((self.command, self.path, dict(self.headers.items())))
                    if proxy.rule and proxy.rule(self.command, self.path, self.headers):
                        proxy.seen += 1
                        if proxy.seen == proxy.nth:
                            hold = True
                            proxy.rule = None
                bucket = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
                if (bucket in proxy.deny_unsigned and "Authorization" not in self.headers
                        and "X-Amz-Signature" not in self.path):
                    msg = b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>unsigned</Message></Error>"
                    self.send_response(403)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(msg)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(msg)
                    return
                if hold:
                    proxy.held.set()
                    if not proxy.released.wait(120):
                        raise TimeoutError("held request never released")
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() in HOP or (k.lower() == "content-length" and self.command != "HEAD"):
                        continue
                    self.send_header(k, v)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _safe(self):
                try:
                    self._handle()
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    self.close_connection = True

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _safe

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def arm(self, match, nth=1):
        with self.lock:
            self.rule, self.seen, self.nth = match, 0, nth
            self.held.clear()
            self.released.clear()

    def wait_held(self, timeout=120):
        if not self.held.wait(timeout):
            raise RuntimeError("the chosen request never arrived")

    def release(self):
        self.released.set()

    def stop(self):
        self.released.set()
        self.server.shutdown()
