"""A tiny HTTP proxy that injects faults between the worker and moto.

Forwards every request to the upstream (moto) unchanged. A fraction of GET
requests (S3 GetObject/ListObjects; SQS uses POST and is never faulted) is
answered with an S3-style 500 InternalError, or the connection is dropped
without a response. Counters are kept for the test report.
"""
import http.client
import random
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.forwarded = 0
        self.errors_500 = 0
        self.dropped = 0

    def add(self, name):
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


def make_handler(upstream_host, upstream_port, fault_rate, counters, rng):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if self.command == "GET":
                with counters.lock:
                    roll = rng.random()
                if roll < fault_rate / 2:
                    counters.add("errors_500")
                    msg = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
                           b"<Message>injected fault</Message></Error>")
                    self.send_response(500)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                if roll < fault_rate:
                    counters.add("dropped")
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            conn = http.client.HTTPConnection(upstream_host, upstream_port, timeout=60)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            finally:
                conn.close()
            counters.add("forwarded")
            self.send_response(resp.status, resp.reason)
            head = self.command == "HEAD"
            for k, v in resp.getheaders():
                if k.lower() in HOP or (k.lower() == "content-length" and not head):
                    continue
                self.send_header(k, v)
            if not head:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _safe(self):
            try:
                self._handle()
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                # The client gave up on this connection (its own timeout or
                # retry); nothing to forward.
                self.close_connection = True

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _safe

    return Handler


def start(upstream_port, fault_rate=0.2, seed=1234):
    """Starts the proxy on a free loopback port; returns (server, port, counters)."""
    counters = Counters()
    handler = make_handler("127.0.0.1", upstream_port, fault_rate, counters, random.Random(seed))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1], counters
