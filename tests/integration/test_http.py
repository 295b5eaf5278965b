"""HTTP behaviour of the real nofussd: both check forms, answers, HTTP/1.0
and 1.1, keep-alive, HEAD, errors, and image serving with ranges and
conditional requests (docs/PEERS.md sections 1, 2 and 5)."""
import os
import socket
import unittest

from harness import (ServerTest, check_headers, connect, esp_image, get, md5, raw_request,
                     read_response)

IMAGE = esp_image("fw-2.0.0", 100000)
RULES = [
    {"origin": {"device": "LAMP", "min": "1.0", "max": "1.9"},
     "target": {"version": "2.0.0", "firmware": "/fw/lamp-2.0.0.bin"}},
    {"origin": {"device": "ODD", "max": "*"},
     "target": {"version": "1.0", "firmware": "/fw/a\\b.bin", "note": "say \"hi\" / caf\u00e9",
                "extra": {"n": [1, 2]}, "spiffs": "/fs/x.bin"}},
    {"origin": {"device": "*", "mac": "AA:BB:CC:DD:EE:FF"},
     "target": {"version": "9.9", "firmware": "http://cdn.example/any.bin"}},
]


class HttpTest(ServerTest):
    rules = RULES
    files = {"fw/lamp-2.0.0.bin": IMAGE, "fw/empty.bin": b"", ".secret": b"no",
             "fw/.hidden.bin": b"no"}

    def setUp(self):
        super().setUp()
        self.start()
        self.port = self.server.port

    def test_path_form(self):
        r = get(self.port, "/LAMP/1.5")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b'{"version":"2.0.0","firmware":"/fw/lamp-2.0.0.bin","spiffs":""}')
        self.assertEqual(get(self.port, "/LAMP/2.0.0").body, b"{}")
        self.assertEqual(get(self.port, "/LAMP/0.9").body, b"{}")
        self.assertEqual(get(self.port, "/lamp/1.5").body, b"{}", "device is case-sensitive")
        self.assertEqual(get(self.port, "//LAMP///1.9").body[:12], b'{"version":"')

    def test_path_form_never_matches_mac_rule(self):
        self.assertEqual(get(self.port, "/ANY/1.0").body, b"{}")

    def test_header_form(self):
        r = get(self.port, "/", check_headers("AA:BB:CC:DD:EE:FF", "WHATEVER", "1.0", ""))
        self.assertEqual(r.body, b'{"version":"9.9","firmware":"http://cdn.example/any.bin","spiffs":""}')
        # Header names are case-insensitive; unknown X-ESP8266-* are ignored.
        r = get(self.port, "/", {"x-esp8266-mac": "11:22:33:44:55:66", "X-Esp8266-Device": "LAMP",
                                 "X-ESP8266-VERSION": "1.0", "X-ESP8266-FREE-SPACE": "1000"})
        self.assertEqual(r.json()["version"], "2.0.0")

    def test_header_form_missing_fields_answer_empty(self):
        for drop in ("X-ESP8266-MAC", "X-ESP8266-DEVICE", "X-ESP8266-VERSION"):
            h = check_headers("AA:BB:CC:DD:EE:FF", "LAMP", "1.0")
            del h[drop]
            self.assertEqual(get(self.port, "/", h).body, b"{}", drop)
            h = check_headers("AA:BB:CC:DD:EE:FF", "LAMP", "1.0")
            h[drop] = ""
            self.assertEqual(get(self.port, "/", h).body, b"{}", drop + " empty")

    def test_json_escaping_and_passthrough(self):
        r = get(self.port, "/ODD/1")
        self.assertEqual(r.body.decode(),
                         '{"version":"1.0","firmware":"/fw/a\\\\b.bin","note":"say \\"hi\\" / caf\u00e9",'
                         '"extra":{"n":[1,2]},"spiffs":"/fs/x.bin"}')
        self.assertEqual(r.json()["firmware"], "/fw/a\\b.bin")

    def test_http_1_0_with_content_length_zero(self):
        req = (b"GET /LAMP/1.0 HTTP/1.0\r\nHost: x\r\nUser-Agent: ESP8266HTTPClient\r\n"
               b"Connection: close\r\nContent-Length: 0\r\n\r\n")
        r, closed = raw_request(self.port, req)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["version"], "2.0.0")
        self.assertEqual(int(r.header("Content-Length")), len(r.body))
        self.assertTrue(closed)

    def test_http_1_0_closes_without_keep_alive(self):
        _, closed = raw_request(self.port, b"GET /LAMP/1.0 HTTP/1.0\r\n\r\n")
        self.assertTrue(closed)

    def test_keep_alive_many_requests_one_connection(self):
        with connect(self.port) as s:
            for i in range(50):
                s.sendall(b"GET /LAMP/1.%d HTTP/1.1\r\nHost: x\r\n\r\n" % (i % 10))
                r = read_response(s)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.json()["version"], "2.0.0")
                self.assertNotEqual((r.header("Connection") or "").lower(), "close")
            # Pipelined requests are answered in order.
            s.sendall(b"GET /LAMP/1.0 HTTP/1.1\r\nHost: x\r\n\r\nGET /LAMP/3.0 HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(read_response(s).json()["version"], "2.0.0")
            self.assertEqual(read_response(s).body, b"{}")
            s.sendall(b"GET /LAMP/1.0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            r = read_response(s)
            self.assertEqual(r.header("Connection").lower(), "close")
            self.assertEqual(s.recv(1), b"")

    def test_head(self):
        full = get(self.port, "/LAMP/1.0")
        r = get(self.port, "/LAMP/1.0", method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), str(len(full.body)))
        r = get(self.port, "/fw/lamp-2.0.0.bin", method="HEAD")
        self.assertEqual(r.header("Content-Length"), str(len(IMAGE)))
        self.assertEqual(r.header("x-MD5"), md5(IMAGE))

    def test_head_sends_no_body(self):
        with connect(self.port) as s:
            s.sendall(b"HEAD /fw/lamp-2.0.0.bin HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.endswith(b"\r\n\r\n"), data[-40:])

    def test_unknown_paths_404(self):
        for path in ("/a/b/c", "/nothing", "/fw/missing.bin", "/fw", "/fw/"):
            r = get(self.port, path)
            self.assertEqual(r.status, 404, path)
            self.assertIsNone(r.header("Location"), "never redirect")

    def test_other_methods_405(self):
        for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
            req = ("%s /LAMP/1.0 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
                   % method).encode()
            r, _ = raw_request(self.port, req)
            self.assertEqual(r.status, 405, method)
            self.assertEqual(r.header("Allow"), "GET, HEAD")

    def test_request_framing_refused_and_closed(self):
        """Nothing in a device request has a body: any framing of one, or an
        ambiguous one, is 400 with Connection: close before a byte of it is
        read, so a request hidden in a body never gets an answer of its own."""
        hidden = b"GET /LAMP/1.0 HTTP/1.1\r\nHost: x\r\n\r\n"
        cases = {
            "two lengths": b"Content-Length: 3\r\nContent-Length: %d\r\n\r\nabc" % len(hidden)
                           + hidden,
            "length and chunked": b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  b"0\r\n\r\n" + hidden,
            "identity": b"Transfer-Encoding: identity\r\n\r\n" + hidden,
            "gzip, chunked": b"Transfer-Encoding: gzip, chunked\r\n\r\n" + hidden,
            "chunked;q=1": b"Transfer-Encoding: chunked;q=1\r\n\r\n" + hidden,
            "a body": b"Content-Length: %d\r\n\r\n" % len(hidden) + hidden,
        }
        for name, rest in cases.items():
            r, closed = raw_request(self.port, b"GET /LAMP/1.0 HTTP/1.1\r\nHost: x\r\n" + rest)
            self.assertEqual(r.status, 400, name)
            self.assertEqual(r.header("Connection"), "close", name)
            self.assertTrue(closed, name)
        # a single Content-Length: 0 is no body: real NoFUSS clients send it
        r, _ = raw_request(self.port, b"GET /LAMP/1.0 HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(r.status, 200)

    def test_version_and_host_checked(self):
        r, closed = raw_request(self.port, b"GET /LAMP/1.0 HTTP/1.2\r\nHost: x\r\n\r\n")
        self.assertEqual((r.status, closed), (505, True))
        for head in (b"", b"Host: a\r\nHost: b\r\n"):  # RFC 9112 section 3.2
            r, closed = raw_request(self.port, b"GET /LAMP/1.0 HTTP/1.1\r\n" + head + b"\r\n")
            self.assertEqual((r.status, closed), (400, True), head)
        # HTTP/1.0 needs no Host
        r, _ = raw_request(self.port, b"GET /LAMP/1.0 HTTP/1.0\r\n\r\n")
        self.assertEqual(r.status, 200)

    def test_image_download(self):
        r = get(self.port, "/fw/lamp-2.0.0.bin", {"User-Agent": "ESP8266-http-Update",
                                                  "x-ESP8266-mode": "sketch"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, IMAGE)
        self.assertEqual(r.header("Content-Length"), str(len(IMAGE)))
        self.assertEqual(r.header("x-MD5"), md5(IMAGE))
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")
        self.assertEqual(r.header("Accept-Ranges"), "bytes")

    def test_image_md5_follows_changes(self):
        self.assertEqual(get(self.port, "/fw/lamp-2.0.0.bin").header("x-MD5"), md5(IMAGE))
        new = esp_image("fw-2.0.1", 100000)
        path = self.data.add_file("fw/lamp-2.0.0.bin", new)
        os.utime(path, (1, 1))  # same size, so only the stamp tells
        r = get(self.port, "/fw/lamp-2.0.0.bin")
        self.assertEqual(r.body, new)
        self.assertEqual(r.header("x-MD5"), md5(new))

    def test_empty_image(self):
        r = get(self.port, "/fw/empty.bin")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), "0")

    def test_ranges(self):
        r = get(self.port, "/fw/lamp-2.0.0.bin", {"Range": "bytes=100-199"}, version="1.1")
        self.assertEqual(r.status, 206)
        self.assertEqual(r.body, IMAGE[100:200])
        self.assertEqual(r.header("Content-Range"), "bytes 100-199/%d" % len(IMAGE))
        r = get(self.port, "/fw/lamp-2.0.0.bin", {"Range": "bytes=99000-"}, version="1.1")
        self.assertEqual(r.body, IMAGE[99000:])
        r = get(self.port, "/fw/lamp-2.0.0.bin", {"Range": "bytes=-10"}, version="1.1")
        self.assertEqual(r.body, IMAGE[-10:])
        r = get(self.port, "/fw/lamp-2.0.0.bin", {"Range": "bytes=200000-"}, version="1.1")
        self.assertEqual(r.status, 416)
        self.assertEqual(r.header("Content-Range"), "bytes */%d" % len(IMAGE))
        r = get(self.port, "/fw/lamp-2.0.0.bin", {"Range": "bytes=0-1,5-6"}, version="1.1")
        self.assertEqual((r.status, r.body), (200, IMAGE))

    def test_if_range(self):
        etag = get(self.port, "/fw/lamp-2.0.0.bin").header("ETag")
        r = get(self.port, "/fw/lamp-2.0.0.bin", {"Range": "bytes=0-9", "If-Range": etag}, "1.1")
        self.assertEqual((r.status, r.body), (206, IMAGE[:10]))
        r = get(self.port, "/fw/lamp-2.0.0.bin", {"Range": "bytes=0-9", "If-Range": '"other"'}, "1.1")
        self.assertEqual((r.status, r.body), (200, IMAGE))

    def test_conditional_get(self):
        first = get(self.port, "/fw/lamp-2.0.0.bin")
        r = get(self.port, "/fw/lamp-2.0.0.bin", {"If-None-Match": first.header("ETag")}, "1.1")
        self.assertEqual((r.status, r.body), (304, b""))
        r = get(self.port, "/fw/lamp-2.0.0.bin",
                {"If-Modified-Since": first.header("Last-Modified")}, "1.1")
        self.assertEqual(r.status, 304)
        r = get(self.port, "/fw/lamp-2.0.0.bin", {"If-None-Match": '"nope"'}, "1.1")
        self.assertEqual(r.status, 200)

    def test_stock_updater_running_this_image_gets_304(self):
        base = {"User-Agent": "ESP8266-http-Update", "x-ESP8266-mode": "sketch",
                "x-ESP8266-sketch-md5": md5(IMAGE).upper()}
        r = get(self.port, "/fw/lamp-2.0.0.bin", base)
        self.assertEqual((r.status, r.body), (304, b""), "no reflash of the running image")
        r = get(self.port, "/fw/lamp-2.0.0.bin", dict(base, **{"x-ESP8266-sketch-md5": "0" * 32}))
        self.assertEqual((r.status, r.body), (200, IMAGE))
        esp32 = {"x-ESP32-mode": "sketch", "x-ESP32-sketch-md5": md5(IMAGE)}
        self.assertEqual(get(self.port, "/fw/lamp-2.0.0.bin", esp32).status, 304)
        spiffs = dict(base, **{"x-ESP8266-mode": "spiffs"})
        self.assertEqual(get(self.port, "/fw/lamp-2.0.0.bin", spiffs).status, 200)

    def test_if_modified_since_dates(self):
        os.utime(os.path.join(self.data.public, "fw/lamp-2.0.0.bin"), (1700000000, 1700000000))
        r = get(self.port, "/fw/lamp-2.0.0.bin", {"If-Modified-Since": "Tue, 14 Nov 2023 22:13:20 GMT"}, "1.1")
        self.assertEqual(r.status, 304)
        r = get(self.port, "/fw/lamp-2.0.0.bin", {"If-Modified-Since": "Wed, 01 Jan 2025 00:00:00 GMT"}, "1.1")
        self.assertEqual(r.status, 304)
        r = get(self.port, "/fw/lamp-2.0.0.bin", {"If-Modified-Since": "Tue, 14 Nov 2023 22:13:19 GMT"}, "1.1")
        self.assertEqual(r.status, 200)
        r = get(self.port, "/fw/lamp-2.0.0.bin", {"If-Modified-Since": "yesterday"}, "1.1")
        self.assertEqual(r.status, 200)

    def test_absolute_form_request(self):
        r, _ = raw_request(self.port, b"GET http://127.0.0.1/LAMP/1.0 HTTP/1.1\r\nHost: x\r\n"
                                      b"Connection: close\r\n\r\n")
        self.assertEqual(r.json()["version"], "2.0.0")

    def test_traversal_refused(self):
        outside = os.path.join(self.data.path, "versions.json")
        os.symlink(outside, os.path.join(self.data.public, "fw", "link.bin"))
        os.symlink("lamp-2.0.0.bin", os.path.join(self.data.public, "fw", "inside.bin"))
        os.symlink("/etc", os.path.join(self.data.public, "etc"))
        for path in ("/../versions.json", "/fw/../../versions.json", "/%2e%2e/versions.json",
                     "/%2E%2E/versions.json", "/fw%2f..%2f..%2fversions.json", "/..%2fversions.json",
                     "/fw/lamp-2.0.0.bin%00.txt", "/fw/link.bin", "/etc/passwd", "/etc/hostname",
                     "/.secret", "/fw/.hidden.bin", "/fw/%2e%2e/%2e%2e/versions.json",
                     "/fw/..%5c..%5cversions.json", "/%zz/x"):
            r = get(self.port, path)
            # Refused, or (two segments that are no folder of images) a check.
            self.assertTrue(r.status in (400, 404) or r.body == b"{}", (path, r.status, r.body))
            self.assertNotIn(b"origin", r.body, path)
            self.assertNotIn(b"root:", r.body, path)
        self.assertEqual(get(self.port, "/fw/inside.bin").body, IMAGE)

    def test_no_redirects_ever(self):
        for path in ("/fw", "/fw/", "//fw//lamp-2.0.0.bin", "/fw/lamp-2.0.0.bin/"):
            r = get(self.port, path)
            self.assertNotIn(r.status, (301, 302, 303, 307, 308), path)
        self.assertEqual(get(self.port, "//fw//lamp-2.0.0.bin").body, IMAGE)

    def test_oversized_headers_refused_cleanly(self):
        req = b"GET /LAMP/1.0 HTTP/1.0\r\nX-Big: " + b"a" * 16000 + b"\r\n\r\n"
        with connect(self.port) as s:
            s.sendall(req)
            try:
                r = read_response(s)
                self.assertGreaterEqual(r.status, 400)
            except ConnectionError:
                pass  # closing is an acceptable refusal too
        self.assertEqual(get(self.port, "/LAMP/1.0").status, 200, "server still fine")

    def test_full_esp32_header_set_fits(self):
        headers = {"User-Agent": "ESP32-http-Update", "Cache-Control": "no-cache",
                   "x-ESP32-STA-MAC": "24:0A:C4:12:34:56", "x-ESP32-AP-MAC": "24:0A:C4:12:34:57",
                   "x-ESP32-free-space": "1966080", "x-ESP32-sketch-size": "912384",
                   "x-ESP32-sketch-md5": "9b2f0c1d2e3f4a5b6c7d8e9f0a1b2c3d",
                   "x-ESP32-sketch-sha256": "5A" * 32, "x-ESP32-chip-size": "4194304",
                   "x-ESP32-sdk-version": "v4.4.7", "x-ESP32-mode": "sketch",
                   "x-ESP32-version": "1.0.0", "Content-Length": "0"}
        self.assertEqual(get(self.port, "/fw/lamp-2.0.0.bin", headers).body, IMAGE)


class SlowClientTest(ServerTest):
    """A slowloris holding many half-sent requests must not starve devices,
    and idle connections are closed after --idle-timeout."""
    rules = RULES
    args = ("--idle-timeout", "2", "--max-connections", "2000")

    def test_slowloris_does_not_starve_devices(self):
        self.start()
        port = self.server.port
        attackers = []
        try:
            for _ in range(300):
                s = connect(port)
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-a: ")
                attackers.append(s)
            for _ in range(20):
                self.assertEqual(get(port, "/LAMP/1.0").json()["version"], "2.0.0")
            # After the idle timeout the half-sent requests are dropped.
            closed = 0
            for s in attackers:
                s.settimeout(10)
                try:
                    if s.recv(1) == b"":
                        closed += 1
                except (socket.timeout, ConnectionResetError):
                    closed += 1 if s.fileno() >= 0 else 0
            self.assertEqual(closed, len(attackers))
        finally:
            for s in attackers:
                s.close()


if __name__ == "__main__":
    unittest.main()
