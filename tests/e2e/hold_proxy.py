"""A loopback HTTP proxy in front of moto that HOLDS one chosen request.

`HoldProxy.arm(match, nth=1)` picks the nth request for which
`match(method, path, headers)` is true; when it arrives the proxy sets
`held` and waits (without forwarding) until `release()` is called, then
forwards it unchanged. Every other request is forwarded at once. This makes
races deterministic: a test holds a request, does something else to
completion, then lets the request go; no sleeps.
"""
import contextlib
import threading
from http.server import ThreadingHTTPServer

from common import ProxyHandler, forward, guarded, moto_server, read_request, send_s3_error


@contextlib.contextmanager
def moto_behind_proxy(log_path):
    """moto_server (common.moto_server, its log at log_path) and a HoldProxy
    in front of it; yields (moto's port, the proxy); both stopped on exit."""
    with moto_server(log_path) as port:
        proxy = HoldProxy(port)
        try:
            yield port, proxy
        finally:
            proxy.stop()


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

        class Handler(ProxyHandler):
            def _handle(self):
                body, headers = read_request(self)
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
                    send_s3_error(self, 403, "AccessDenied", "unsigned")
                    return
                if hold:
                    proxy.held.set()
                    if not proxy.released.wait(120):
                        raise TimeoutError("held request never released")
                forward(self, proxy.upstream_port, body, headers)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = guarded(_handle)

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
