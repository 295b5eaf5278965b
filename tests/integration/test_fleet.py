"""The fleet simulator (`nofuss fleet`) against the real nofussd on loopback:
200 devices go from 0.1.0 to 0.1.1 (filesystem and firmware) and nofussd's
check log shows each of their MACs reporting 0.1.1 afterwards; a firmware
that does not start with 0xE9 fails on every device and changes nothing; a
rule restricted by MAC updates exactly its devices; a firmware that crashes
at boot is reverted everywhere; devices check every --interval for
--duration; --timeout cuts what is in flight. The requests of a fleet device
are byte for byte those of `nofuss device`. And the command line.

Every run is bounded (--timeout, and the subprocess timeout above it)."""
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import unittest

from test_device import DEVICE, FW_SIZE, FS_SIZE, DeviceTest, image_bytes, nofuss, wait_log

MAC_BASE = 0x5CCF7F100000
FLEET_TIMEOUT = 25        # seconds: the fleet's own --timeout
RUN_TIMEOUT = 60.0        # the subprocess's
BAD_MAGIC = "firmware does not start with 0xE9 or 0x1F"
REVERTED = "new firmware did not confirm its trial boot (reverted)"
FLASH_FAILED = "flash write failed"
CHECK_RX = re.compile(r"MAC: (\S+) DEVICE: (\S+) VERSION: (\S+) BUILD: \S* UPDATE: (\S+)$")
IO_TIMEOUT = 10.0

FS_AND_FW = [{"origin": {"device": DEVICE, "max": "0.1.0"},
              "target": {"version": "0.1.1", "firmware": "/firmware/test-0.1.1.bin",
                         "spiffs": "/firmware/test-0.1.1-fs.bin"}}]


def mac(i, base=MAC_BASE):
    v = base + i
    return ":".join("%02X" % ((v >> s) & 0xFF) for s in range(40, -8, -8))


def size_bytes(text):
    return int(text[:-1]) * 1024 if text.endswith("K") else int(text)


class Fleet:
    """One `nofuss fleet --json` run: exit status, summary, stderr."""

    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        try:
            self.summary = json.loads(proc.stdout) if proc.stdout.strip() else None
        except ValueError:
            self.summary = None

    def __getitem__(self, key):
        if self.summary is None:
            raise AssertionError("no JSON summary:\n%s" % self)
        return self.summary[key]

    def __str__(self):
        return "exit %s\n--- stdout\n%s--- stderr\n%s" % (self.rc, self.out, self.err[-4000:])


def run_fleet(url, *args, n=200):
    base = ["fleet", "--server", url, "--devices", n, "--device", DEVICE, "--version", "0.1.0",
            "--mac-base", mac(0), "--json", "--timeout", FLEET_TIMEOUT, "--seed", 1]
    return Fleet(nofuss(*(base + list(args)), timeout=RUN_TIMEOUT))


def checks_by_mac(server, pattern, count):
    """{MAC: [(device, version, update), ...]} from the check log, once
    `count` lines match pattern."""
    out = {}
    for line in wait_log(server, pattern, count=count):
        m = CHECK_RX.search(line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2, 3, 4))
    return out


class FleetTest(DeviceTest):
    rules = FS_AND_FW

    def setUp(self):
        super().setUp()
        self.data.add_file("firmware/test-0.1.1.bin", image_bytes(self.tmp, "0.1.1"))
        self.data.add_file("firmware/test-0.1.1-fs.bin", image_bytes(self.tmp, "0.1.1", "--fs"))

    def fleet(self, *args, n=200):
        return run_fleet(self.url(), *args, n=n)


class UpdateTest(FleetTest):
    def test_200_devices_update(self):
        self.start()
        started = time.monotonic()
        r = self.fleet("--until-updated", "--ramp", "0.5", "--reboot-delay", "0.05",
                       "--interval", "0.2", "--progress", "0.2", n=200)
        took = time.monotonic() - started
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual((r["updated"], r["failed"], r["up_to_date"], r["unfinished"]),
                         (200, 0, 200, 0), str(r))
        self.assertEqual(r["failed_by_error"], {})
        self.assertEqual(r["firmware_versions"], {"0.1.1": 200})
        self.assertEqual(r["filesystem_versions"], {"0.1.1": 200})
        # One check that updates, one after the reboot that finds nothing new.
        self.assertEqual((r["checks"], r["checks_failed"], r["updates_installed"]),
                         (400, 0, 200))
        self.assertEqual((r["boots"], r["reverted"], r["transfers"]), (400, 0, 800))
        images = size_bytes(FW_SIZE) + size_bytes(FS_SIZE)
        self.assertGreaterEqual(r["bytes_downloaded"], 200 * images)
        self.assertLess(r["bytes_downloaded"], 200 * images + 400 * 257)
        self.assertFalse(r["timed_out"])
        self.assertLess(took, 20.0)
        self.assertRegex(r.err, r"\[fleet\] [\d.]+s  checks \d+ \| up to date \d+ \| "
                                r"updating \d+ \| updated \d+ \| failed 0 \| in flight")

        # nofussd saw 200 distinct MACs at 0.1.0 (offered 0.1.1), then the
        # same 200 at 0.1.1 (offered nothing).
        logged = checks_by_mac(self.server, r"VERSION: 0\.1\.1 BUILD:  UPDATE: none$", 200)
        self.assertEqual(set(logged), {mac(i) for i in range(200)})
        logged = checks_by_mac(self.server, r"DEVICE: TEST VERSION: ", 400)
        self.assertEqual(len(logged), 200)
        for m, seen in logged.items():
            self.assertEqual(seen, [(DEVICE, "0.1.0", "0.1.1"), (DEVICE, "0.1.1", "none")], m)

    def test_bad_firmware_fails_everywhere(self):
        """A firmware not starting with 0xE9: every device fails with
        NF_ERR_MAGIC at every check, and none changes version."""
        bad = bytearray(image_bytes(self.tmp, "0.1.1"))
        bad[0] = 0x00
        self.data.add_file("firmware/bad.bin", bytes(bad))
        self.data.write_rules([{"origin": {"device": DEVICE, "max": "0.1.0"},
                                "target": {"version": "0.1.1",
                                           "firmware": "/firmware/bad.bin"}}])
        self.start()
        r = self.fleet("--until-updated", "--give-up", "2", "--interval", "0.1",
                       "--reboot-delay", "0.05", "-q", n=100)
        self.assertEqual(r.rc, 1, str(r))
        self.assertEqual((r["failed"], r["updated"], r["up_to_date"]), (100, 0, 0), str(r))
        self.assertEqual(r["failed_by_error"], {BAD_MAGIC: 100})
        self.assertEqual((r["checks"], r["checks_failed"]), (200, 200))
        self.assertEqual(r["check_errors"], {BAD_MAGIC: 200})
        self.assertEqual(r["firmware_versions"], {"0.1.0": 100})
        self.assertEqual(r["filesystem_versions"], {"0.1.0": 100})
        self.assertEqual((r["boots"], r["updates_installed"]), (100, 0))
        logged = checks_by_mac(self.server, r"DEVICE: TEST ", 200)
        self.assertEqual(set(logged), {mac(i) for i in range(100)})
        for m, seen in logged.items():
            self.assertEqual(seen, [(DEVICE, "0.1.0", "0.1.1")] * 2, m)

    def test_rule_restricted_by_mac(self):
        """A rule naming 10 MACs of 60 devices updates exactly those 10."""
        chosen = [mac(i) for i in range(20, 30)]
        self.data.write_rules([{"origin": {"device": DEVICE, "max": "0.1.0", "mac": chosen},
                                "target": FS_AND_FW[0]["target"]}])
        self.start()
        r = self.fleet("--until-updated", "--reboot-delay", "0.05", "-q", n=60)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual((r["updated"], r["failed"], r["up_to_date"]), (10, 0, 60), str(r))
        self.assertEqual(r["firmware_versions"], {"0.1.0": 50, "0.1.1": 10})
        self.assertEqual(r["filesystem_versions"], {"0.1.0": 50, "0.1.1": 10})
        self.assertEqual(r["checks"], 70)
        logged = checks_by_mac(self.server, r"DEVICE: TEST ", 70)
        self.assertEqual({m for m, seen in logged.items() if (DEVICE, "0.1.1", "none") in seen},
                         set(chosen))
        self.assertEqual(len(logged), 60)

    def test_crash_at_boot_is_reverted(self):
        """A firmware that crashes at boot: each device installs it, boots it
        on trial, crashes, reverts to 0.1.0, and gives up after --give-up."""
        self.data.add_file("firmware/crash.bin", image_bytes(self.tmp, "0.1.1", "--crash"))
        self.data.write_rules([{"origin": {"device": DEVICE, "max": "0.1.0"},
                                "target": {"version": "0.1.1",
                                           "firmware": "/firmware/crash.bin"}}])
        self.start()
        r = self.fleet("--until-updated", "--give-up", "2", "--interval", "0.1",
                       "--reboot-delay", "0.02", "-q", n=20)
        self.assertEqual(r.rc, 1, str(r))
        self.assertEqual((r["failed"], r["updated"]), (20, 0), str(r))
        self.assertEqual(r["failed_by_error"], {REVERTED: 20})
        self.assertEqual(r["firmware_versions"], {"0.1.0": 20})
        # Per device: power-on, then twice (trial boot that crashes, revert).
        self.assertEqual((r["checks"], r["crashes"], r["reverted"], r["boots"]),
                         (40, 40, 40, 100))

    def test_corrupt_image_is_not_committed(self):
        """A firmware file corrupted on the server: its x-MD5 is computed
        from the corrupt bytes, so the core takes it, but the memory flash
        finds its payload MD5 wrong before it commits anything, as the
        directory does: the update fails (FIRMWARE_UPDATE_ERROR, flash write
        failed), nothing reboots, and the devices stay on 0.1.0."""
        fw = bytearray(image_bytes(self.tmp, "0.1.1"))
        fw[5000] ^= 0xFF
        self.data.add_file("firmware/torn.bin", bytes(fw))
        self.data.write_rules([{"origin": {"device": DEVICE, "max": "0.1.0"},
                                "target": {"version": "0.1.1",
                                           "firmware": "/firmware/torn.bin"}}])
        self.start()
        r = self.fleet("--until-updated", "--give-up", "2", "--interval", "0.1",
                       "--reboot-delay", "0.02", "--verbose", "-q", n=20)
        self.assertEqual(r.rc, 1, str(r))
        self.assertEqual((r["failed"], r["updated"]), (20, 0), str(r))
        self.assertEqual(r["failed_by_error"], {FLASH_FAILED: 20})
        self.assertEqual((r["checks"], r["checks_failed"], r["crashes"], r["reverted"]),
                         (40, 40, 0, 0))
        self.assertEqual((r["boots"], r["updates_installed"]), (20, 0))
        self.assertEqual(r["firmware_versions"], {"0.1.0": 20})
        self.assertIn("[%s] TEST 0.1.0: FIRMWARE_UPDATE_ERROR: flash write failed"
                      % mac(3), r.err)

    def test_duration_and_interval(self):
        """Without --until-updated devices check every --interval until
        --duration is over; checks in flight then finish."""
        self.data.write_rules([])
        self.start()
        started = time.monotonic()
        r = self.fleet("--duration", "1", "--interval", "0.2", "--jitter", "0.05", "-q", n=20)
        took = time.monotonic() - started
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual((r["up_to_date"], r["failed"], r["unfinished"]), (20, 0, 0), str(r))
        # At 0.2-0.25 s apart, 4 to 6 checks each within the second.
        self.assertGreaterEqual(r["checks"], 20 * 4)
        self.assertLessEqual(r["checks"], 20 * 6)
        self.assertGreaterEqual(took, 1.0)
        self.assertLess(took, 10.0)


class CaptureServer:
    """A one-thread HTTP server on loopback that records each request head
    and answers: a check with an update to /fw.bin, an image with 404, or
    nothing at all (hang=True: the connection stays open, unanswered)."""

    def __init__(self, hang=False):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.hang = hang
        self.heads = []
        self.held = []
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        deadline = time.monotonic() + RUN_TIMEOUT
        while not self.stopping and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            if self.hang:
                self.held.append(conn)
                continue
            with conn:
                conn.settimeout(IO_TIMEOUT)
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                self.heads.append(head.replace(b":%d" % self.port, b":PORT"))
                if b"x-ESP8266-mode" in head:
                    conn.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                else:
                    body = b'{"version":"0.1.1","firmware":"/fw.bin","spiffs":""}'
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                                 % (len(body), body))

    def url(self):
        return "http://127.0.0.1:%d/" % self.port

    def close(self):
        self.stopping = True
        self.thread.join(5)
        for conn in self.held:
            conn.close()
        self.sock.close()


class WireTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nofuss-fleet-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def capture(self, *args):
        server = CaptureServer()
        try:
            r = nofuss(*[a.replace("URL", server.url()) for a in args], timeout=RUN_TIMEOUT)
        finally:
            server.close()
        return r, server.heads

    def test_requests_match_nofuss_device(self):
        """The same device (MAC, name, version, build, provisioned images)
        sends the same bytes from `nofuss fleet` as from `nofuss device`:
        the check, then the firmware download."""
        for form in ([], ["--path-form"]):
            flash = os.path.join(self.tmp, "flash%d" % len(form))
            d, dev_heads = self.capture("device", "--flash", flash, "--device", DEVICE,
                                        "--version", "0.1.0", "--mac", mac(7), "--build", "42",
                                        "--server", "URL", "--once", *form)
            self.assertEqual(d.returncode, 1, d.stdout + d.stderr)  # the image is a 404
            f, fleet_heads = self.capture("fleet", "--devices", "1", "--device", DEVICE,
                                          "--version", "0.1.0", "--mac-base", mac(7),
                                          "--build", "42", "--server", "URL", "--duration",
                                          "0.3", "--json", *form)
            self.assertEqual(f.returncode, 1, f.stdout + f.stderr)
            self.assertEqual(json.loads(f.stdout)["failed_by_error"],
                             {"unexpected HTTP status": 1})
            self.assertEqual(len(dev_heads), 2, dev_heads)
            self.assertEqual(fleet_heads, dev_heads)
            self.assertIn(b"\r\nx-ESP8266-STA-MAC: %s\r\n" % mac(7).encode(), dev_heads[1])

    def test_timeout_cuts_transfers(self):
        """A server that never answers: --timeout ends the run, every
        transfer in flight is cut, nothing is counted as a check."""
        server = CaptureServer(hang=True)
        try:
            started = time.monotonic()
            r = run_fleet(server.url(), "--until-updated", "--timeout", "1", "-q", n=30)
            took = time.monotonic() - started
        finally:
            server.close()
        self.assertEqual(r.rc, 1, str(r))
        self.assertTrue(r["timed_out"])
        self.assertEqual((r["unfinished"], r["failed"], r["checks"], r["transfers_cut"]),
                         (30, 0, 0, 30), str(r))
        self.assertLess(took, 10.0)


class CommandLineTest(unittest.TestCase):
    def test_help(self):
        r = nofuss("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("fleet", r.stdout)
        r = nofuss("fleet", "--help")
        self.assertEqual(r.returncode, 0)
        for word in ("--server", "--devices", "--device", "--mac-base", "--version",
                     "--path-form", "--ramp", "--interval", "--jitter", "--duration",
                     "--until-updated", "--timeout", "--reboot-delay", "--concurrency",
                     "--progress", "--json", "Exit status"):
            self.assertIn(word, r.stdout)

    def test_bad_usage_exit_2(self):
        ok = ["fleet", "-s", "http://127.0.0.1:9/", "-d", DEVICE, "--version", "0.1.0"]
        cases = [
            (["fleet"], "required"),
            (["fleet", "-d", DEVICE, "--version", "0.1.0"], "--server"),
            (ok + ["--devices", "0"], "--devices"),
            (ok + ["--devices", "100001"], "--devices"),
            (ok + ["--mac-base", "5C:CF"], "--mac-base"),
            (ok + ["--mac-base", "FF:FF:FF:FF:FF:FF", "--devices", "2"], "FF:FF:FF:FF:FF:FF"),
            (ok + ["--device", "A B"], "--device"),
            (ok + ["--device", ","], "--device"),
            (ok + ["--concurrency", "0"], "--concurrency"),
            (ok + ["--interval", "soon"], "--interval"),
            (ok + ["--give-up", "0"], "--give-up"),
            (ok + ["--server", "http://x/" + "a" * 200], "--server"),
            (ok + ["--version", "1 0"], "version"),
            (ok + ["extra"], "unexpected"),
        ]
        for args, word in cases:
            r = nofuss(*args)
            self.assertEqual(r.returncode, 2, "%s\n%s" % (args, r.stderr))
            self.assertIn(word, r.stderr, args)


if __name__ == "__main__":
    unittest.main()
