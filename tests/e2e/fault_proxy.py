"""A tiny HTTP proxy that injects faults between the worker and moto.

Forwards every request to the upstream (moto) unchanged. A fraction of GET
requests (S3 GetObject/ListObjects; SQS uses POST and is never faulted) is
answered with an S3-style 500 InternalError, or the connection is dropped
without a response. Counters are kept for the test report.
"""
import random
import socket
import threading
from http.server import ThreadingHTTPServer

from common import ProxyHandler, forward, guarded, read_request, send_s3_error


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.forwarded = 0
        self.errors_500 = 0
        self.dropped = 0

    def add(self, name):
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


def make_handler(upstream_port, fault_rate, counters, rng):
    class Handler(ProxyHandler):
        def _handle(self):
            body, headers = read_request(self)
            if self.command == "GET":
                with counters.lock:
                    roll = rng.random()
                if roll < fault_rate / 2:
                    counters.add("errors_500")
                    send_s3_error(self, 500, "InternalError", "injected fault")
                    return
                if roll < fault_rate:
                    counters.add("dropped")
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
            forward(self, upstream_port, body, headers)
            counters.add("forwarded")

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = guarded(_handle)

    return Handler


def start(upstream_port, fault_rate=0.2, seed=1234):
    """Starts the proxy on a free loopback port; returns (server, port, counters)."""
    counters = Counters()
    handler = make_handler(upstream_port, fault_rate, counters, random.Random(seed))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1], counters
