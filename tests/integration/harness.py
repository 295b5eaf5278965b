"""Shared pieces of the integration tests: a temporary data directory, the
real nofussd started on a free loopback port, and a raw-socket HTTP client
that sends requests byte for byte as devices do.

Every test talks to 127.0.0.1 only. Every wait is bounded.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import weakref

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
NOFUSSD = os.environ.get("NOFUSSD", os.path.join(SOURCE, "build", "server", "nofussd"))
# e.g. "valgrind --error-exitcode=99 --leak-check=full" to run the server under valgrind
WRAPPER = os.environ.get("NOFUSSD_WRAPPER", "").split()
# The byte-exact client requests, kept in the tree (tests/fixtures/requests/README.md)
FIXTURES = os.environ.get(
    "NOFUSS_FIXTURES", os.path.join(SOURCE, "tests", "fixtures", "requests"))
START_TIMEOUT = 30.0 if WRAPPER else 10.0


def esp_image(tag, size):
    """Bytes that look like an ESP8266 image (0xE9 first) and carry tag."""
    head = bytes([0xE9, 0x01, 0x00, 0x20, 0, 0, 0x10, 0x40]) + tag.encode()
    return head + bytes((i * 13 + 5) & 0xFF for i in range(size - len(head)))


class DataDir:
    """A data directory: versions.json and public/ in a temp folder."""

    def __init__(self, rules=None, files=None):
        self.path = tempfile.mkdtemp(prefix="nofuss-it-")
        self.public = os.path.join(self.path, "public")
        os.makedirs(self.public)
        self.rules_path = os.path.join(self.path, "versions.json")
        for name, data in (files or {}).items():
            self.add_file(name, data)
        self.write_rules(rules if rules is not None else [])

    def add_file(self, name, data):
        full = os.path.join(self.public, name.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
        return full

    def write_rules(self, rules, atomic=True):
        text = rules if isinstance(rules, str) else json.dumps(rules, indent=2)
        if atomic:
            tmp = self.rules_path + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.rename(tmp, self.rules_path)
        else:
            with open(self.rules_path, "w") as f:
                f.write(text)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


class Server:
    """The real nofussd on 127.0.0.1 and a free port; stderr is collected."""

    def __init__(self, data, *args, check_log=None, expect_start=True):
        self.data = data
        self.check_log = check_log or os.path.join(data.path, "checks.log")
        cmd = WRAPPER + [NOFUSSD, "-d", data.path, "-l", "127.0.0.1", "-p", "0",
                         "--check-log", self.check_log] + list(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.port = None
        if expect_start:
            line = self.wait_for(r"listening on 127\.0\.0\.1:(\d+)", START_TIMEOUT)
            self.port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))

    def _read(self):
        for raw in self.proc.stderr:
            with self.cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # end of output
            self.cond.notify_all()

    def wait_for(self, pattern, timeout=10.0, start=0):
        """The first stderr line from index start matching pattern."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    if line is None:
                        raise AssertionError("nofussd exited waiting for %r:\n%s"
                                             % (pattern, self.stderr()))
                    if rx.search(line):
                        return line
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timeout waiting for %r:\n%s" % (pattern, self.stderr()))
                self.cond.wait(left)

    def line_count(self):
        with self.cond:
            return len([l for l in self.lines if l is not None])

    def stderr(self):
        with self.cond:
            return "\n".join(l for l in self.lines if l is not None)

    def signal(self, signo):
        self.proc.send_signal(signo)

    def stop(self, timeout=30.0):
        """SIGTERM, then the exit status (killed after timeout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(5)
            raise AssertionError("nofussd did not stop on SIGTERM")
        self.reader.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> value (last wins)
        self.header_list = []
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body.decode())


_leftover = weakref.WeakKeyDictionary()  # bytes read past a response, per socket


def read_response(sock, head_only=False, timeout=10.0):
    """Reads one HTTP response from sock. Body by Content-Length, or until
    the peer closes when there is none. head_only: a HEAD answer. Bytes of a
    following (pipelined) response are kept for the next call."""
    sock.settimeout(timeout)
    buf = _leftover.pop(sock, b"")
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a full response head: %r" % buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3}) ?(.*)", lines[0])
    if not m:
        raise AssertionError("bad status line %r" % lines[0])
    headers = {}
    header_list = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
        header_list.append((name.strip(), value.strip()))
    status = int(m.group(1))
    if head_only or status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed after %d of %d body bytes" % (len(rest), n))
            rest += chunk
        body, rest = rest[:n], rest[n:]
    else:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        body = rest
    if rest:
        _leftover[sock] = rest
    r = Response(status, m.group(2), headers, body, head)
    r.header_list = header_list
    return r


def connect(port, timeout=10.0):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def raw_request(port, data, head_only=False):
    """Sends data as is on a new connection; returns the response and
    whether the server then closed the connection."""
    with connect(port) as s:
        s.sendall(data)
        r = read_response(s, head_only=head_only)
        s.settimeout(2.0)
        try:
            closed = s.recv(1) == b""
        except socket.timeout:
            closed = False
        return r, closed


def get(port, path, headers=None, version="1.0", method="GET"):
    lines = ["%s %s HTTP/%s" % (method, path, version), "Host: 127.0.0.1:%d" % port]
    if version == "1.1" and not any(k.lower() == "connection" for k in (headers or {})):
        lines.append("Connection: close")
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin1")
    return raw_request(port, data, head_only=(method == "HEAD"))[0]


def on_conn(sock, port, method, path, headers=None, body=b""):
    """One HTTP/1.1 request on an open (kept-alive) socket, plain or TLS,
    and its response; the socket stays open for the next."""
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1:%d" % port]
    lines += ["%s: %s" % kv for kv in (headers or {}).items()]
    if body:
        lines.append("Content-Length: %d" % len(body))
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin1") + body)
    return read_response(sock, head_only=(method == "HEAD"))


def closed_by_peer(sock, wait=0.3):
    """Whether the peer has closed sock (EOF or reset) within wait seconds;
    False when it stays open and silent."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except (socket.timeout, TimeoutError):
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True


def check_headers(mac, device, version, build=None):
    """The headers a NoFUSS client sends with a header-form check."""
    h = {"User-Agent": "NoFussClient", "X-ESP8266-MAC": mac, "X-ESP8266-DEVICE": device,
         "X-ESP8266-VERSION": version}
    if build is not None:
        h["X-ESP8266-BUILD"] = build
    return h


def fixture(name, port=None):
    """A request fixture's bytes, with its Host header pointed at port."""
    with open(os.path.join(FIXTURES, name), "rb") as f:
        data = f.read()
    if port is not None:
        data = re.sub(rb"\r\nHost: [^\r]*\r\n", b"\r\nHost: 127.0.0.1:%d\r\n" % port, data, 1)
    return data


def read_text(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def wait_until(fn, timeout=10.0, step=0.05):
    """fn()'s first true value, polled every step seconds for at most
    timeout seconds; its last value when none was true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(step)
    return fn()


def md5(data):
    return hashlib.md5(data).hexdigest()


class ServerTest(unittest.TestCase):
    """Base class: self.data and self.server, cleaned up after each test."""

    rules = []
    files = {}
    args = ()

    def setUp(self):
        self.data = DataDir(self.rules, self.files)
        self.server = None

    def start(self, *args):
        self.server = Server(self.data, *(tuple(self.args) + args))
        return self.server

    def tearDown(self):
        try:
            if self.server is not None:
                rc = self.server.stop()
                self.assertEqual(rc, 0, "nofussd exit status\n" + self.server.stderr())
        finally:
            self.data.cleanup()
