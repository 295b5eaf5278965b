"""Replays, byte for byte, the requests real clients send (tests/fixtures/
requests/, rebuilt from and captured off the NoFUSS client and the ESP8266/
ESP32 HTTP updaters) against the real nofussd, and checks every answer the
way those clients read it (docs/PEERS.md sections 1, 2 and 5)."""
import time
import unittest

from harness import (DataDir, Server, esp_image, fixture, md5, raw_request, read_text)

TEST_BIN = esp_image("test", 4096)
SONOFF_FW = esp_image("sonoff-0.1.1", 20000)
SONOFF_FS = b"FS" + bytes(range(256)) * 40
ESP32_BIN = esp_image("esp32-1.0.1", 9000)

RULES = [
    {"origin": {"device": "TEST", "max": "0.1.0"},
     "target": {"version": "0.1.1", "firmware": "/firmware/test.bin"}},
    {"origin": {"device": "ESPURNA_SONOFF_BASIC", "mac": ["5C:CF:7F:8B:6B:26"],
                "lt": "1.13.6", "build_not": "1"},
     "target": {"version": "1.13.6", "firmware": "/firmware/espurna.bin", "size": 1234}},
    {"origin": {"device": "SONOFF", "min": "0.9.0", "max": "0.9.7"},
     "target": {"version": "1.0.0", "firmware": "/firmware/sonoff-0.1.1.bin",
                "spiffs": "/firmware/sonoff-0.1.1-spiffs.bin"}},
    {"origin": {"device": "SONOFF", "min": "0.1.0", "max": "0.1.0"},
     "target": {"version": "0.1.1", "firmware": "firmware/sonoff-0.1.1.bin",
                "spiffs": "firmware/sonoff-0.1.1-spiffs.bin"}},
]
FILES = {
    "firmware/test.bin": TEST_BIN,
    "firmware/espurna.bin": esp_image("espurna", 5000),
    "firmware/sonoff-0.1.1.bin": SONOFF_FW,
    "firmware/sonoff-0.1.1-spiffs.bin": SONOFF_FS,
    "firmware/sonoff-0.1.1.bin": SONOFF_FW,
    "update/esp32": ESP32_BIN,
}


class FixtureTest(unittest.TestCase):
    """Two servers on the same data: one at "/", one under "/nofuss"."""

    @classmethod
    def setUpClass(cls):
        cls.data = DataDir(RULES, FILES)
        cls.root = Server(cls.data)
        cls.prefixed = Server(cls.data, "--base", "/nofuss/",
                              check_log=cls.data.path + "/prefixed.log")

    @classmethod
    def tearDownClass(cls):
        rcs = (cls.root.stop(), cls.prefixed.stop())
        cls.data.cleanup()
        assert rcs == (0, 0), rcs

    def replay(self, server, name):
        r, closed = raw_request(server.port, fixture(name, server.port))
        # Every answer a device reads carries Content-Length and no chunking.
        self.assertEqual(int(r.header("Content-Length")), len(r.body))
        self.assertIsNone(r.header("Transfer-Encoding"))
        self.assertIsNone(r.header("Location"))
        return r, closed

    def assert_check(self, r, closed, expected):
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertEqual(r.body, expected)
        self.assertTrue(closed, "Connection: close must be honoured")

    def assert_image(self, r, closed, data):
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, data)
        self.assertEqual(r.header("x-MD5"), md5(data))
        self.assertEqual(r.header("ETag"), '"%s"' % md5(data))
        self.assertIsNotNone(r.header("Last-Modified"))
        self.assertTrue(closed)

    def test_nofuss_client_0_4_0_header_check(self):
        r, closed = self.replay(self.root, "nofuss-client-0.4.0-check.http")
        self.assert_check(r, closed, b'{"version":"1.13.6","firmware":"/firmware/espurna.bin",'
                                     b'"size":1234,"spiffs":""}')

    def test_captured_nofuss_client_check_empty_build(self):
        r, closed = self.replay(self.root, "captured-nofuss-client-0.4.0-check.http")
        self.assert_check(r, closed,
                          b'{"version":"0.1.1","firmware":"/firmware/test.bin","spiffs":""}')

    def test_captured_download_triple_slash(self):
        r, closed = self.replay(self.root, "captured-nofuss-client-0.4.0-download.http")
        self.assert_image(r, closed, TEST_BIN)

    def test_captured_esp8266_httpupdate(self):
        r, closed = self.replay(self.root, "captured-esp8266-httpupdate-sketch.http")
        self.assert_image(r, closed, TEST_BIN)

    def test_esp32_httpupdate(self):
        r, closed = self.replay(self.root, "esp32-httpupdate-sketch.http")
        self.assert_image(r, closed, ESP32_BIN)

    def test_esp8266_httpupdate_missing_image_is_404(self):
        # /firmware/sonoff-0.1.1.bin exists; ask for a missing one the same way.
        data = fixture("esp8266-httpupdate-3.1-sketch.http", self.root.port)
        r, _ = raw_request(self.root.port, data)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, SONOFF_FW)
        r, _ = raw_request(self.root.port, data.replace(b"sonoff-0.1.1.bin", b"gone-0.1.1.bin"))
        self.assertEqual(r.status, 404, "an updater download is never answered as a check")

    def test_nofuss_client_0_2_6_under_base_empty_build_no_content_length(self):
        r, closed = self.replay(self.prefixed, "nofuss-client-0.2.6-check-empty-build.http")
        self.assert_check(r, closed, b'{"version":"1.0.0","firmware":"/firmware/sonoff-0.1.1.bin",'
                                     b'"spiffs":"/firmware/sonoff-0.1.1-spiffs.bin"}')

    def test_nofuss_client_1_0_path_form_under_base_keep_alive(self):
        r, closed = self.replay(self.prefixed, "nofuss-client-1.0-path-check.http")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b'{"version":"0.1.1","firmware":"firmware/sonoff-0.1.1.bin",'
                                 b'"spiffs":"firmware/sonoff-0.1.1-spiffs.bin"}')
        self.assertFalse(closed, "HTTP/1.1 keep-alive must stay open")

    def test_nofuss_client_1_0_spiffs_download_double_slash(self):
        r, closed = self.replay(self.prefixed, "nofuss-client-1.0-spiffs-download-double-slash.http")
        self.assert_image(r, closed, SONOFF_FS)

    def test_fixtures_outside_base_are_404(self):
        r, _ = self.replay(self.prefixed, "captured-esp8266-httpupdate-sketch.http")
        self.assertEqual(r.status, 404)

    def test_check_log_lines(self):
        self.replay(self.root, "nofuss-client-0.4.0-check.http")
        self.replay(self.prefixed, "nofuss-client-1.0-path-check.http")
        # The log is flushed at least once a second.
        deadline = time.monotonic() + 5
        want_root = ("IP: 127.0.0.1 MAC: 5C:CF:7F:8B:6B:26 DEVICE: ESPURNA_SONOFF_BASIC "
                     "VERSION: 1.13.5 BUILD: 1559606400 UPDATE: 1.13.6")
        want_prefixed = "from:127.0.0.1 device:SONOFF version:0.1.0 update:0.1.1"
        while time.monotonic() < deadline:
            root = read_text(self.root.check_log)
            prefixed = read_text(self.prefixed.check_log)
            if want_root in root and want_prefixed in prefixed:
                break
            time.sleep(0.1)
        self.assertRegex(root, r"\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\] " + want_root)
        self.assertRegex(prefixed, r"\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\] " + want_prefixed)


if __name__ == "__main__":
    unittest.main()
