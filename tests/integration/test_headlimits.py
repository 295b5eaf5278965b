"""Every request gets an answer, whatever the size of its head (issue 8,
item 5): 414 for a request target over 1024 bytes, 431 for a head over
--memory-limit, the real answer otherwise (docs/PROTOCOL.md section 4).

libmicrohttpd keeps the head and the answer's head in one memory pool per
connection; before the fix, heads that just fitted left no room for the
answer and were closed without a byte. These sweeps cross every boundary,
with the default --memory-limit, on raw sockets against the real nofussd.
"""
import socket
import unittest

from harness import ServerTest, connect, esp_image, read_response

IMAGE = esp_image("fw-2.0.0", 50000)
RULES = [{"origin": {"device": "LAMP", "min": "1.0", "max": "1.9"},
          "target": {"version": "2.0.0", "firmware": "/fw/lamp-2.0.0.bin"}}]
MEMORY_LIMIT = 2048  # the default
MAX_TARGET = 1024    # NF_MAX_URL
RECORD = 64          # pool bytes per header line (docs/PROTOCOL.md section 4)


def pool_use(head):
    """What a head counts against --memory-limit, as documented: its bytes
    rounded up to 16, and 64 per header line and per query argument."""
    lines = head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    target = lines[0].split(b" ")[1]
    args = target.split(b"?", 1)[1].count(b"&") + 1 if b"?" in target else 0
    return (len(head) + 15) // 16 * 16 + RECORD * (len(lines) - 1 + args)


def expected(head, real):
    target = head.split(b" ", 2)[1]
    if len(target) > MAX_TARGET:
        return 414
    if pool_use(head) > MEMORY_LIMIT:
        return 431
    return real


def answer(port, data, timeout=5.0):
    """The answer to data on a new connection (None when the server closed
    it without one), and whether the server then closed the connection."""
    with connect(port, timeout) as s:
        s.sendall(data)
        try:
            r = read_response(s, timeout=timeout)
        except (ConnectionError, socket.timeout):
            return None, True
        s.settimeout(timeout)
        try:
            closed = s.recv(1) == b""
        except (socket.timeout, ConnectionResetError):
            closed = False
        return r, closed


def padded(start, size, tail=b"Connection: close\r\n", pad=b"X-Pad"):
    """start + one pad header + tail, made exactly size bytes long."""
    fixed = len(start) + len(pad) + 2 + 2 + len(tail) + 2
    return start + pad + b": " + b"p" * (size - fixed) + b"\r\n" + tail + b"\r\n"


class HeadLimitsTest(ServerTest):
    rules = RULES
    files = {"fw/lamp-2.0.0.bin": IMAGE}

    def setUp(self):
        super().setUp()
        self.start()

    def sweep(self, heads, real):
        """Sends each head; returns the mismatches as (size, got, wanted)."""
        wrong = []
        for head in heads:
            r, closed = answer(self.server.port, head)
            want = expected(head, real)
            got = r.status if r is not None else None
            if got != want or (want in (414, 431) and not closed):
                wrong.append((len(head), got, want, closed))
            if got in (414, 431):
                self.assertEqual(r.header("Connection"), "close")
        return wrong

    def test_request_lines_1500_to_2300(self):
        heads = []
        for size in list(range(1000, 1100, 3)) + list(range(1500, 2301, 20)):
            # the request line alone is size bytes
            query = b"x=" + b"q" * (size - len(b"GET /LAMP/1.0? HTTP/1.1") - 2)
            heads.append(b"GET /LAMP/1.0?" + query + b" HTTP/1.1\r\nHost: h\r\n"
                         b"Connection: close\r\n\r\n")
        self.assertEqual(self.sweep(heads, 200), [])
        # both sides of the boundary were crossed
        self.assertEqual({expected(h, 200) for h in heads}, {200, 414})

    def test_heads_1500_to_2300(self):
        start = b"GET /LAMP/1.0 HTTP/1.1\r\nHost: h\r\n"
        heads = [padded(start, size) for size in range(1500, 2301, 7)]
        self.assertEqual(self.sweep(heads, 200), [])
        self.assertEqual({expected(h, 200) for h in heads}, {200, 431})

    def test_many_small_headers(self):
        heads = []
        for n in range(10, 30):
            lines = b"".join(b"X-H%02d: %s\r\n" % (i, b"v" * 20) for i in range(n))
            heads.append(b"GET /LAMP/1.0 HTTP/1.0\r\n" + lines + b"\r\n")
        self.assertEqual(self.sweep(heads, 200), [])
        self.assertEqual({expected(h, 200) for h in heads}, {200, 431})

    def test_downloads_with_the_largest_answer(self):
        # An updater's ranged download: a 206 with every header nofussd sends.
        start = (b"GET /fw/lamp-2.0.0.bin HTTP/1.1\r\nHost: h\r\nUser-Agent: ESP32-http-Update\r\n"
                 b"x-ESP32-mode: sketch\r\nRange: bytes=10000-10009\r\n")
        heads = [padded(start, size) for size in range(1500, 2301, 7)]
        self.assertEqual(self.sweep(heads, 206), [])
        self.assertEqual({expected(h, 206) for h in heads}, {206, 431})

    def test_pipelined_updater_requests(self):
        # Two ranged updater downloads in one write, kept alive: both answered.
        one = (b"GET /fw/lamp-2.0.0.bin HTTP/1.1\r\nHost: 192.168.1.100\r\n"
               b"User-Agent: ESP32-http-Update\r\nCache-Control: no-cache\r\n"
               b"x-ESP32-STA-MAC: 24:0A:C4:12:34:56\r\nx-ESP32-AP-MAC: 24:0A:C4:12:34:57\r\n"
               b"x-ESP32-free-space: 1966080\r\nx-ESP32-sketch-size: 912384\r\n"
               b"x-ESP32-sketch-md5: 9b2f0c1d2e3f4a5b6c7d8e9f0a1b2c3d\r\n"
               b"x-ESP32-chip-size: 4194304\r\nx-ESP32-sdk-version: v4.4.7\r\n"
               b"x-ESP32-mode: sketch\r\nx-ESP32-version: 1.0.0\r\nRange: bytes=0-9\r\n\r\n")
        with connect(self.server.port) as s:
            s.sendall(one + one)
            for _ in range(2):
                r = read_response(s)
                self.assertEqual((r.status, r.body), (206, IMAGE[:10]))

    def test_pipelined_heads(self):
        # Three pipelined requests with up to 16 headers each: all answered.
        # (With more, libmicrohttpd may read the next requests into the room
        # kept for the answer: docs/PROTOCOL.md section 4.)
        for n in range(0, 17, 2):
            lines = b"".join(b"X-H%02d: %s\r\n" % (i, b"v" * 20) for i in range(n))
            one = b"GET /LAMP/1.0 HTTP/1.1\r\nHost: h\r\n" + lines + b"\r\n"
            last = one.replace(b"Host: h\r\n", b"Host: h\r\nConnection: close\r\n")
            want = [200] * 3 if expected(one, 200) == 200 else [431]
            with connect(self.server.port) as s:
                s.sendall(one + one + last)
                got = []
                for _ in range(3):
                    try:
                        got.append(read_response(s).status)
                    except ConnectionError:
                        break
            self.assertEqual(got, want, "%d headers, %d bytes" % (n, len(one)))

    def test_server_fine_after_refusals(self):
        long_line = b"GET /" + b"a" * 1800 + b" HTTP/1.1\r\nHost: h\r\n\r\n"
        r, closed = answer(self.server.port, long_line)
        self.assertEqual((r.status, closed), (414, True))
        self.assertEqual(r.body, b"URI Too Long\n")
        r, _ = answer(self.server.port, b"GET /LAMP/1.0 HTTP/1.0\r\n\r\n")
        self.assertEqual(r.json()["version"], "2.0.0")


if __name__ == "__main__":
    unittest.main()
