"""Slowloris (issue 8, item 4): clients that drip a request head a byte at a
time must neither hold a connection past --header-timeout nor keep real
checks out when they fill every slot; a download, or a kept-alive
connection between requests, is never cut by the head deadline
(docs/CONFIGURATION.md, docs/HTTP-LAYER.md section 12)."""
import errno
import socket
import threading
import time
import unittest

from harness import ServerTest, connect, esp_image, get, read_response, wait_until
from test_releases import READ_TOKEN, ReleaseServer

IMAGE = esp_image("fw-2.0.0", 400000)
RULES = [{"origin": {"device": "LAMP", "min": "1.0", "max": "1.9"},
          "target": {"version": "2.0.0", "firmware": "/fw/lamp-2.0.0.bin"}}]
PREFIX = b"GET /LAMP/1.0 HTTP/1.1\r\nHost: x\r\nX-Drip: "


class Dripper:
    """n connections that each send PREFIX and then one more byte of a
    header that never ends, every `every` seconds; one the server closes is
    opened again (as an attacker would). Runs in a thread for at most
    max_s seconds."""

    def __init__(self, port, n, every=1.0, max_s=120.0, reopen=True, source="127.0.0.1",
                 prefix=PREFIX):
        self.port, self.n, self.every, self.max_s, self.reopen = port, n, every, max_s, reopen
        self.source, self.prefix = source, prefix
        self.socks = [None] * n
        self.closed_by_server = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def open_one(self, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((self.source, 0))
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", self.port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            return
        self.socks[i] = [s, False]  # socket, prefix sent

    def send(self, i, data):
        entry = self.socks[i]
        try:
            entry[0].send(data)
            return True
        except BlockingIOError:
            return True  # not connected yet, or the buffer is full: later
        except OSError:
            entry[0].close()
            self.socks[i] = None
            self.closed_by_server += 1
            return False

    def start(self):
        for i in range(self.n):
            self.open_one(i)
        self.thread.start()
        return self

    def run(self):
        deadline = time.monotonic() + self.max_s
        while not self.stop.is_set() and time.monotonic() < deadline:
            for i in range(self.n):
                entry = self.socks[i]
                if entry is None:
                    if self.reopen:
                        self.open_one(i)
                    continue
                if not entry[1]:
                    entry[1] = self.send(i, self.prefix) and True
                else:
                    self.send(i, b"a")
            self.stop.wait(self.every)

    def close(self):
        self.stop.set()
        self.thread.join(10)
        for entry in self.socks:
            if entry is not None:
                entry[0].close()


def wait_closed(s, every, max_s):
    """Drips a byte on s every `every` seconds until the server closes it
    (True) or max_s seconds passed (False)."""
    deadline = time.monotonic() + max_s
    s.setblocking(False)
    try:
        while time.monotonic() < deadline:
            time.sleep(every)
            try:
                s.send(b"a")
                if s.recv(1) == b"":
                    return True
            except BlockingIOError:
                pass
            except OSError:
                return True
        return False
    finally:
        s.setblocking(True)


def seconds_to_close(test, port, prefix, every, max_s):
    """Sends prefix on a new connection, then a byte every `every` seconds
    (the idle timeout never ends it): the seconds until the server closed it."""
    with connect(port, timeout=max_s + 5) as s:
        t0 = time.monotonic()
        s.sendall(prefix)
        test.assertTrue(wait_closed(s, every, max_s), "a dripping head lived on")
        return time.monotonic() - t0


def timed_check(port, timeout=10.0):
    """One real check on a new connection: (answered with the rule's target,
    seconds it took)."""
    t0 = time.monotonic()
    try:
        with connect(port, timeout) as s:
            s.sendall(b"GET /LAMP/1.0 HTTP/1.0\r\nHost: h\r\n\r\n")
            r = read_response(s, timeout=timeout)
        ok = r.status == 200 and r.json().get("version") == "2.0.0"
    except (OSError, ConnectionError, ValueError):
        ok = False
    return ok, time.monotonic() - t0


class SlowlorisTest(ServerTest):
    rules = RULES
    files = {"fw/lamp-2.0.0.bin": IMAGE}

    def test_checks_answered_with_every_slot_held(self):
        # Twice as many dripping connections as slots, the head deadline at
        # its default (10 s): only shedding at the limit lets checks in.
        self.start("--max-connections", "200")
        port = self.server.port
        dripper = Dripper(port, 400).start()
        try:
            time.sleep(3)  # every slot taken, 200 more waiting in the queue
            latencies = []
            for _ in range(20):
                ok, took = timed_check(port, timeout=5.0)
                self.assertTrue(ok, "check not answered with every slot held "
                                "(%d answered before)" % len(latencies))
                latencies.append(took)
                time.sleep(0.1)
            latencies.sort()
            self.assertLess(latencies[-1], 2.0, "slowest check: %.3f s" % latencies[-1])
        finally:
            dripper.close()
        self.assertGreater(dripper.closed_by_server, 0)

    def test_drip_closed_after_header_timeout(self):
        self.start("--header-timeout", "2", "--idle-timeout", "30")
        closed_after = seconds_to_close(self, self.server.port, PREFIX, 0.1, 8.0)
        self.assertGreaterEqual(closed_after, 1.9)
        self.assertLess(closed_after, 4.0)

    def test_slow_download_not_cut(self):
        # A download that takes several head deadlines to read.
        self.start("--header-timeout", "1", "--sndbuf", "4096")
        with connect(self.server.port, timeout=30) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /fw/lamp-2.0.0.bin HTTP/1.0\r\nHost: h\r\n\r\n")
            got = b""
            t0 = time.monotonic()
            while time.monotonic() - t0 < 30:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
                time.sleep(0.001)
            took = time.monotonic() - t0
        head, body = got.split(b"\r\n\r\n", 1)
        self.assertIn(b" 200 ", head.split(b"\r\n")[0])
        self.assertEqual(body, IMAGE)
        self.assertGreater(took, 3.0, "the download was not slow enough to prove anything")

    def test_keep_alive_between_requests_governed_by_idle_timeout(self):
        self.start("--header-timeout", "1", "--idle-timeout", "4")
        with connect(self.server.port) as s:
            for _ in range(2):
                s.sendall(b"GET /LAMP/1.0 HTTP/1.1\r\nHost: h\r\n\r\n")
                self.assertEqual(read_response(s).status, 200)
                time.sleep(2.5)  # idle past the head deadline, within the idle timeout
            # A head dripped on the kept-alive connection (so that the idle
            # timeout never ends it) is closed idle + header timeout after
            # the last answer: 5 s after it, 2.5 s from now.
            t0 = time.monotonic()
            s.sendall(PREFIX)
            self.assertTrue(wait_closed(s, 0.3, 10.0))
            self.assertGreater(time.monotonic() - t0, 1.5)
            self.assertLess(time.monotonic() - t0, 4.0)
        self.assertEqual(get(self.server.port, "/LAMP/1.0").status, 200)



ADMIN_PREFIX = b"GET /api/v1/summary HTTP/1.1\r\nHost: x\r\nX-Drip: "


class AdminSlowlorisTest(ReleaseServer):
    """The admin listener (32 connections, a thread each) against the same
    drip: a head is due 10 s after the connection opened, near the limit
    the oldest heads still dripping are closed, and one address holds 16
    connections at most (docs/ADMIN.md section 1)."""

    def summary(self, timeout=10.0):
        """A real API call on a new connection: (answered 200, seconds)."""
        t0 = time.monotonic()
        try:
            st, body, _ = self.request("GET", "/api/v1/summary", token=READ_TOKEN)
            ok = st == 200 and "devices" in body
        except (OSError, ValueError):
            ok = False
        return ok, time.monotonic() - t0

    def test_dripping_head_closed_after_10s(self):
        # A byte every 0.5 s: the 30 s idle timeout never ends it.
        closed_after = seconds_to_close(self, self.port, ADMIN_PREFIX, 0.5, 16.0)
        self.assertGreaterEqual(closed_after, 9.5)
        self.assertLess(closed_after, 12.5)

    def test_operators_answered_with_every_slot_dripped(self):
        # 48 dripping connections from three addresses (16 each, the most
        # one address may hold) against 32 slots.
        drippers = [Dripper(self.port, 16, every=0.5, max_s=60, source="127.0.0.%d" % i,
                            prefix=ADMIN_PREFIX).start() for i in (2, 3, 4)]
        try:
            time.sleep(2)
            took = []
            for _ in range(8):
                ok, t = self.summary()
                self.assertTrue(ok, "not answered with every slot dripped (%d before)" % len(took))
                took.append(t)
            print("\nadmin API with every slot dripped: slowest of 8 calls %.2f s" % max(took))
            self.assertLess(max(took), 3.0, took)
        finally:
            for d in drippers:
                d.close()
        self.assertGreater(sum(d.closed_by_server for d in drippers), 0)
        self.assertIn("admin: slow request heads:", self.srv.stderr())

    def test_one_address_holds_16_connections(self):
        socks = []
        try:
            for _ in range(20):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind(("127.0.0.5", 0))
                s.settimeout(5)
                s.connect(("127.0.0.1", self.port))
                socks.append(s)
            for s in socks:
                s.setblocking(False)
            closed = set()

            def four_closed():
                for i, s in enumerate(socks):
                    try:
                        if s.recv(1) == b"":
                            closed.add(i)
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed.add(i)
                return len(closed) >= 4
            # The server closes the 4 past the limit at once; polled, so that
            # a slow machine has time to accept all 20.
            self.assertTrue(wait_until(four_closed, timeout=10, step=0.1), closed)
            time.sleep(0.5)
            four_closed()
            self.assertEqual(len(closed), 4, closed)
            # Another address is served all the while.
            self.assertTrue(self.summary()[0])
        finally:
            for s in socks:
                s.close()


if __name__ == "__main__":
    unittest.main()
