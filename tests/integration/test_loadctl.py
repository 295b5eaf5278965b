"""Load control (issue 10 item 6; docs/ROLLOUTS.md section 5) on the real
nofussd: with --max-downloads N, N image transfers held open by clients
that read nothing make every further image request a 503 with Retry-After
(ranged and HEAD ones too; a 304 is still a 304), every check that would be
an offer is deferred (NoFUSS: "{}"; the stock updater and the ESPHome
manifest: 503 + Retry-After), the store records the deferral and keeps the
open offer, and the gauge falls back as transfers end or are cut. /metrics
tells all of it.

Then the issue's test: 500 simulated devices (`nofuss fleet`) and
max-downloads 20, one rule offering a new image to all of them; the peak
of transfers in flight never exceeds 20, and every device ends on the new
version, in a bounded time. And the same with 500 stock ESP8266 updaters,
deferred by 503s.

Every wait is bounded (wait_until, socket timeouts, the fleet's --timeout)."""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest
import urllib.parse

from harness import (NOFUSSD, DataDir, Server, check_headers, esp_image, fixture, get, md5,
                     raw_request, read_response, wait_until)
from test_admin import parse_metrics, write_tokens
from test_device import NOFUSS, image_bytes, sanitizer_env
from test_stock import image, with_header

TOKEN = "adm-0123456789abcdef-LOADCTL"
BIG = esp_image("big-2.0", 4 * 1024 * 1024)   # held open by readers that read nothing
SONOFF = image("sonoff-1.1.0", 40000)       # ESP8266 images the stock paths can offer
LIVING = image("livingroom-1.1.0", 35000)
LAMP_MAC = "5C:CF:7F:AA:00:01"
STOCK_MAC = "5C:CF:7F:8B:6B:26"              # the stock fixture's x-ESP8266-STA-MAC
RETRY = "7"

RULES = [
    {"origin": {"device": "LAMP", "lt": "2.0"},
     "target": {"version": "2.0", "firmware": "/firmware/big.bin"}},
    {"origin": {"device": "SONOFF", "lt": "1.1.0"},
     "target": {"version": "1.1.0", "firmware": "/firmware/sonoff.bin"}},
    {"origin": {"device": "livingroom"},
     "target": {"version": "1.1.0", "firmware": "/firmware/living.bin"}},
]
FILES = {"firmware/big.bin": BIG, "firmware/sonoff.bin": SONOFF,
         "firmware/living.bin": LIVING}


def start(data, *args):
    """nofussd with an admin listener; (server, admin port)."""
    tokens = os.path.join(data.path, "tokens")
    write_tokens(tokens, "%s admin loadctl\n" % TOKEN)
    srv = Server(data, "--admin-port", "0", "--admin-token-file", tokens, *args)
    line = srv.wait_for(r"admin API at http://127\.0\.0\.1:(\d+)/")
    return srv, int(re.search(r":(\d+)/", line).group(1))


def admin(port, path):
    r = get(port, path, {"Authorization": "Bearer " + TOKEN})
    assert r.status == 200, (path, r.status, r.body)
    return r


def metrics(port):
    return parse_metrics(admin(port, "/metrics").body.decode())


def stalled(port, path, extra=None):
    """A GET of path from a client that reads nothing, with a small receive
    buffer: the transfer stays in flight until the socket is closed."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port]
    lines += ["%s: %s" % kv for kv in (extra or {}).items()]
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return s


def cut(sock):
    """Closes sock with a reset, as a device losing power mid-download."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class LoadControlTest(unittest.TestCase):
    def setUp(self):
        self.data = DataDir(RULES, FILES)
        self.server = None
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        try:
            if self.server is not None:
                rc = self.server.stop()
                self.assertEqual(rc, 0, self.server.stderr())
        finally:
            self.data.cleanup()

    def start(self, *args):
        self.server, self.admin = start(self.data, "--sndbuf", "4096", *args)
        return self.server.port

    def gauge(self, name, want):
        """Waits until the metric is want; returns the metrics."""
        got = wait_until(lambda: (lambda m: m if m[name] == want else None)(
            metrics(self.admin)), timeout=10)
        self.assertIsNotNone(got, "%s never %s: %s" % (name, want, metrics(self.admin)[name]))
        return got

    def stall(self, port, extra=None):
        s = stalled(port, "/firmware/big.bin", extra)
        self.socks.append(s)
        return s

    def device(self, key, pred):
        """The device from the admin API once pred(device) holds."""
        path = "/api/v1/devices/" + urllib.parse.quote(key)
        d = wait_until(lambda: (lambda d: d if pred(d) else None)(
            json.loads(admin(self.admin, path).body)), timeout=10)
        self.assertIsNotNone(d, json.loads(admin(self.admin, path).body))
        return d

    def assert_busy(self, r, head=False):
        self.assertEqual(r.status, 503, r.raw_head)
        self.assertEqual(r.header("Retry-After"), RETRY)
        self.assertLess(int(r.header("Content-Length")), 100)
        if not head:
            self.assertTrue(r.body.startswith(b"Service Unavailable"), r.body)

    def lamp_check(self, port):
        return get(port, "/", check_headers(LAMP_MAC, "LAMP", "1.0", "b1"))

    def test_past_the_limit(self):
        port = self.start("--max-downloads", "2", "--retry-after", RETRY)
        self.assertEqual(self.lamp_check(port).json()["version"], "2.0")  # offered
        self.stall(port)
        m = self.gauge("nofuss_downloads_active", 1)
        # HEAD sends no body: answered, and not a transfer.
        r = get(port, "/firmware/big.bin", method="HEAD")
        self.assertEqual((r.status, r.header("Content-Length")), (200, str(len(BIG))))
        m = metrics(self.admin)
        self.assertEqual((m["nofuss_downloads_active"], m["nofuss_downloads_started_total"]),
                         (1, 1))
        # A resume (206) counts as a transfer.
        self.stall(port, {"Range": "bytes=1000-"})
        m = self.gauge("nofuss_downloads_active", 2)
        self.assertEqual(m["nofuss_downloads_peak"], 2)
        self.server.wait_for(r"max-downloads 2 reached: offers are deferred and image requests "
                             r"get 503 \(since start: 0 checks deferred, 0 image requests "
                             r"refused\)")

        # Full: every image request is refused, ranged and HEAD ones too...
        self.assert_busy(get(port, "/firmware/big.bin"))
        self.assert_busy(get(port, "/firmware/sonoff.bin", {"Range": "bytes=0-99"}))
        self.assert_busy(get(port, "/firmware/big.bin", method="HEAD"), head=True)
        # ...but a conditional request for what the client has is no transfer.
        r = get(port, "/firmware/big.bin", {"If-None-Match": '"%s"' % md5(BIG)})
        self.assertEqual(r.status, 304)
        # Checks that would be offers are deferred.
        self.assertEqual(self.lamp_check(port).json(), {})
        self.assertEqual(get(port, "/LAMP/1.0").json(), {})
        self.assertEqual(get(port, "/LAMP/2.0").json(), {})  # no offer anyway: none
        self.assert_busy(raw_request(port, fixture("esp8266-httpupdate-3.1-update-url.http",
                                                   port))[0])
        self.assert_busy(raw_request(port, fixture("esphome-2025.11-esp8266-manifest.http",
                                                   port))[0])
        # getAvailableVersion(): nothing on offer now, its own version back.
        r = raw_request(port, with_header(fixture("esp8266-httpupdate-3.1-update-url.http", port),
                                          "x-ESP8266-mode", "version"))[0]
        self.assertEqual((r.status, r.header("x-version"), r.header("x-MD5")), (200, "1.0.0", None))
        m = metrics(self.admin)
        self.assertEqual(m["nofuss_downloads_refused_total"], 4)  # 3 images, 1 stock update
        self.assertEqual(m["nofuss_checks_deferred_total"], 5)  # header, path, 2 stock, ESPHome
        self.assertEqual(m['nofuss_checks_total{client="nofuss",answer="deferred"}'], 1)
        self.assertEqual(m['nofuss_checks_total{client="nofuss-path",answer="deferred"}'], 1)
        self.assertEqual(m['nofuss_checks_total{client="nofuss-path",answer="none"}'], 1)
        self.assertEqual(m['nofuss_checks_total{client="esphome",answer="deferred"}'], 1)
        self.assertEqual(m['nofuss_checks_total{client="esp8266-updater",answer="deferred"}'], 2)
        self.assertEqual(m["nofuss_downloads_active"], 2)
        self.assertEqual(m["nofuss_downloads_started_total"], 2)

        # The store: deferred, and the open offer stands (not withdrawn).
        lamp = self.device(LAMP_MAC, lambda d: d["answer"]["kind"] == "deferred")
        self.assertEqual(lamp["state"], "offered")
        self.assertEqual(lamp["answer"]["target"], "2.0")
        self.assertIn("max-downloads 2", lamp["answer"]["reason"])
        self.assertEqual([h["kind"] for h in lamp["history"]], ["offered"])
        stock = self.device(STOCK_MAC, lambda d: d["answer"]["kind"] == "deferred")
        self.assertEqual(stock["state"], "none")
        decision = json.loads(admin(self.admin, "/api/v1/devices/%s/decision"
                                    % urllib.parse.quote(LAMP_MAC)).body)
        self.assertIn("deferred", decision["explanation"])

        # A transfer cut: the gauge falls back and a download goes through.
        cut(self.socks.pop(0))
        m = self.gauge("nofuss_downloads_active", 1)
        self.assertEqual(m["nofuss_downloads_failed_total"], 1)
        r = get(port, "/firmware/big.bin")
        self.assertEqual((r.status, len(r.body)), (200, len(BIG)))
        self.gauge("nofuss_downloads_active", 1)
        self.assertEqual(self.lamp_check(port).json()["version"], "2.0")  # offered again
        lamp = self.device(LAMP_MAC, lambda d: d["answer"]["kind"] == "offered")
        self.assertEqual(lamp["state"], "offered")
        self.socks.pop(0).close()
        m = self.gauge("nofuss_downloads_active", 0)
        self.assertEqual(m["nofuss_downloads_peak"], 2)
        self.assertEqual(m["nofuss_downloads_started_total"], 3)
        self.assertEqual(m["nofuss_downloads_refused_total"], 4)
        # Reached twice (the full download took the freed slot): said once a minute.
        self.assertEqual(self.server.stderr().count("max-downloads 2 reached"), 1)

    def test_no_limit_by_default(self):
        port = self.start()
        for _ in range(3):
            self.stall(port)
        m = self.gauge("nofuss_downloads_active", 3)
        r = get(port, "/firmware/sonoff.bin")
        self.assertEqual((r.status, r.body), (200, SONOFF))
        self.assertEqual(self.lamp_check(port).json()["version"], "2.0")
        m = self.gauge("nofuss_downloads_active", 3)
        self.assertEqual((m["nofuss_downloads_peak"], m["nofuss_downloads_refused_total"],
                          m["nofuss_checks_deferred_total"]), (4, 0, 0))

    def test_settings_bounded(self):
        def check(*args):
            return subprocess.run([NOFUSSD, "-d", self.data.path, "--check", "--store", "off"] +
                                  list(args), capture_output=True, text=True, timeout=30)

        ini = os.path.join(self.data.path, "n.ini")
        for key, value, bound in (("max-downloads", "1000001", "0 to 1000000"),
                                  ("max-downloads", "-1", "0 to 1000000"),
                                  ("retry-after", "0", "1 to 3600"),
                                  ("retry-after", "3601", "1 to 3600")):
            r = check("--" + key, value)  # bad usage
            self.assertEqual(r.returncode, 2, (key, value, r.stderr))
            self.assertIn('--%s: "%s" is not a number from %s' % (key, value, bound), r.stderr)
            with open(ini, "w") as f:
                f.write("[nofussd]\n%s = %s\n" % (key, value))
            r = check("-c", ini)  # invalid settings
            self.assertEqual(r.returncode, 1, (key, value, r.stderr))
            self.assertIn(key, r.stderr)
        with open(ini, "w") as f:
            f.write("[nofussd]\nmax-downloads = 20\nretry-after = 3600\n")
        self.assertEqual(check("-c", ini).returncode, 0)


FLEET = 500
LIMIT = 20
FLEET_RULES = [{"origin": {"device": "TEST", "max": "0.1.0"},
                "target": {"version": "0.2.0", "firmware": "/firmware/test-0.2.0.bin"}}]


class FleetLimitTest(unittest.TestCase):
    """The issue's test: 500 devices, max-downloads 20."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nofuss-lc-")
        self.data = DataDir(FLEET_RULES, {})
        self.data.add_file("firmware/test-0.2.0.bin",
                           image_bytes(self.tmp, "0.2.0", size="256K"))
        self.server, self.admin = start(self.data, "--max-downloads", str(LIMIT),
                                        "--sndbuf", "4096", "--check-log", "")
        self.fleet = None

    def tearDown(self):
        try:
            if self.fleet is not None and self.fleet.poll() is None:
                self.fleet.kill()
                self.fleet.communicate(timeout=10)
            rc = self.server.stop()
            self.assertEqual(rc, 0, self.server.stderr())
        finally:
            self.data.cleanup()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def summary(self):
        return json.loads(admin(self.admin, "/api/v1/summary").body)

    def run_fleet(self, n, *client):
        """n devices (of the client kind given, NoFUSS by default) until the
        store has every one confirmed on 0.2.0; checks the bound and returns
        the metrics."""
        started = time.monotonic()
        self.fleet = subprocess.Popen(
            [NOFUSS, "fleet", "--server", "http://127.0.0.1:%d/" % self.server.port,
             "--devices", str(n), "--device", "TEST", "--version", "0.1.0",
             "--interval", "0.3", "--ramp", "0.5", "--reboot-delay", "0.05",
             "--duration", "50", "--timeout", "55", "--seed", "1", "--json", "--quiet"] +
            list(client),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            text=True, env=sanitizer_env())
        # Until the store has every device confirmed on 0.2.0, sampling the
        # gauge meanwhile (it must never pass the limit either).
        samples = []

        def all_updated():
            m = metrics(self.admin)
            samples.append(m["nofuss_downloads_active"])
            s = self.summary()
            return s["by_state"]["confirmed"] == n and s["by_type_version"] == [
                {"type": "TEST", "version": "0.2.0", "devices": n}]

        done = wait_until(all_updated, timeout=45, step=0.2)
        took = time.monotonic() - started
        self.fleet.send_signal(signal.SIGINT)
        out, err = self.fleet.communicate(timeout=30)
        self.assertTrue(done, "%s\n%s" % (self.summary(), err[-3000:]))
        r = json.loads(out)
        self.assertEqual(r["firmware_versions"], {"0.2.0": n}, err[-3000:])
        self.assertEqual(r["updates_installed"], n)
        m = metrics(self.admin)
        self.assertLessEqual(max(samples), LIMIT)
        self.assertLessEqual(m["nofuss_downloads_peak"], LIMIT)
        # The limit was reached (a check is deferred only at the limit), so
        # the peak is exactly the limit.
        self.assertGreater(m["nofuss_checks_deferred_total"], 0)
        self.assertEqual(m["nofuss_downloads_peak"], LIMIT)
        self.assertGreaterEqual(m["nofuss_downloads_completed_total"], n)
        self.assertEqual(m["nofuss_downloads_started_total"],
                         m["nofuss_downloads_completed_total"] +
                         m["nofuss_downloads_failed_total"])
        self.assertLess(took, 45)
        print("\n%d devices %s, max-downloads %d: all on 0.2.0 in %.1f s; peak %d, %d checks "
              "deferred, %d downloads refused" % (
                  n, " ".join(client) or "(NoFUSS)", LIMIT, took, m["nofuss_downloads_peak"],
                  m["nofuss_checks_deferred_total"], m["nofuss_downloads_refused_total"]))
        return m

    def test_500_devices_max_downloads_20(self):
        self.run_fleet(FLEET)

    def test_stock_updaters_deferred_by_503(self):
        """The stock updater checks and downloads in one request: its
        deferral is the 503, counted both ways."""
        m = self.run_fleet(FLEET, "--client", "esp8266-updater")
        self.assertEqual(m['nofuss_checks_total{client="esp8266-updater",answer="deferred"}'],
                         m["nofuss_downloads_refused_total"])
        self.assertEqual(m["nofuss_downloads_started_total"], FLEET)


if __name__ == "__main__":
    unittest.main()
