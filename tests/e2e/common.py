"""What the end-to-end (e2e.py), consistency (consistency.py) and FMRC
(fmrc_moto.py) tests share: the check log, the dbofs keys and generated
files, S3 events, the AWS settings, moto_server on a free loopback port, and
the forwarding half of their proxies (fault_proxy.py, hold_proxy.py)."""
import contextlib
import http.client
import json
import os
from http.server import BaseHTTPRequestHandler
import pathlib
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
SRC = "noaa-ofs-pds"
DEST = "nextgen-dmac"
DAY = "20230323"

failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        failures.append(what)


def src_key(cycle, hour):
    return f"dbofs.{DAY}/nos.dbofs.fields.{hour}.{DAY}.t{cycle}z.nc"


def ref_key(prefix, cycle, hour):
    return f"{prefix}/nos.dbofs.fields.{hour}.{DAY}.t{cycle}z.nc.zarr"


def generate(gen, pairs, make_ofs=ROOT / "fixtures/make_ofs.py"):
    """Small dbofs fields files (make_ofs.py --scale small) for each (cycle,
    hour), generated once into `gen`; returns {(cycle, hour): path}."""
    files = {}
    for cycle, h in pairs:
        path = gen / src_key(cycle, h)
        if not path.exists():
            subprocess.run([sys.executable, str(make_ofs), "--model", "dbofs", "--kind", "fields", "--hour", h,
                            "--cycle", f"2023-03-23T{cycle}", "--scale", "small", "--out", str(gen)],
                           check=True, stdout=subprocess.DEVNULL)
        files[(cycle, h)] = path
    return files


def event(bucket, keys, time="2023-03-23T13:00:00.000Z"):
    """An S3 ObjectCreated notification naming `keys` in `bucket`."""
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventTime": time,
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": k, "size": 1}}} for k in keys]})


def aws_env(key_id, secret):
    """This process's AWS settings: the given fake credentials, us-east-1,
    and nothing from the caller's profile or endpoint overrides."""
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(k, None)
    os.environ.update(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1",
                      AWS_REGION="us-east-1")


class Cli:
    """Runs the binary under test against the S3 endpoint at `port` (the
    proxy), logging at info, each verb for dbofs, never anonymous, with at
    most 2 attempts a request."""
    ARGS = ["--models", "dbofs", "--anonymous", "never", "--max-attempts", "2"]

    def __init__(self, binary, port):
        self.binary = binary
        self.env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", RUST_LOG="info")

    def start(self, verb_args, extra_env=None):
        return subprocess.Popen([self.binary, *verb_args, *self.ARGS], env=dict(self.env, **(extra_env or {})),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self, verb_args, extra_env=None):
        """(exit code, stdout, stderr)."""
        p = self.start(verb_args, extra_env)
        out, err = p.communicate(timeout=300)
        return p.returncode, out, err


def summary():
    """Prints the number of failed checks; the exit code."""
    print(f"\n{len(failures)} failure(s)")
    return 1 if failures else 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_server(log_path, timeout=60):
    """moto_server (beside this interpreter, the oracle venv's) on a free
    loopback port, waited for; yields the port; stopped on exit. A port
    taken by someone else between choosing and binding it is retried."""
    moto_bin = pathlib.Path(sys.executable).parent / "moto_server"
    with open(log_path, "w") as log:
        for _ in range(3):
            port = free_port()
            proc = subprocess.Popen([str(moto_bin), "-H", "127.0.0.1", "-p", str(port)],
                                    stdout=log, stderr=subprocess.STDOUT)
            if _wait_port(port, proc, timeout):
                break
            _stop(proc)
        else:
            raise RuntimeError(f"moto_server did not start (see {log_path})")
        try:
            print(f"moto_server on http://127.0.0.1:{port} (pid {proc.pid})", flush=True)
            yield port
        finally:
            _stop(proc)


def _wait_port(port, proc, timeout):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc.poll() is None
        except OSError:
            time.sleep(0.1)
    return False


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class ProxyHandler(BaseHTTPRequestHandler):
    """What both proxies' handlers are: HTTP/1.1 (keep-alive, as the AWS
    SDK expects), no request log on stderr."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass


# Hop-by-hop headers: never forwarded by a proxy.
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


def read_request(handler):
    """The request's body (or None) and its end-to-end headers."""
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length) if length else None
    headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP}
    return body, headers


def forward(handler, upstream_port, body, headers):
    """Sends the request to 127.0.0.1:upstream_port and its answer back to
    the client (with its own Content-Length)."""
    conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
    try:
        conn.request(handler.command, handler.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    head = handler.command == "HEAD"
    handler.send_response(resp.status, resp.reason)
    for k, v in resp.getheaders():
        if k.lower() in HOP or (k.lower() == "content-length" and not head):
            continue
        handler.send_header(k, v)
    if not head:
        handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    if not head:
        handler.wfile.write(data)


def send_s3_error(handler, status, code, message):
    """An S3-style XML error answer."""
    msg = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
           f"<Message>{message}</Message></Error>").encode()
    head = handler.command == "HEAD"
    handler.send_response(status)
    handler.send_header("Content-Type", "application/xml")
    handler.send_header("Content-Length", "0" if head else str(len(msg)))
    handler.end_headers()
    if not head:
        handler.wfile.write(msg)


def guarded(handle):
    """A do_* method that runs `handle` and treats a client that gave up on
    its connection (its own timeout or retry) as nothing to answer."""
    def run(self):
        try:
            handle(self)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
    return run
