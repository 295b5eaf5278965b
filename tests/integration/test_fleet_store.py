"""The fleet store wired into nofussd, on its default SQLite file: simulated
fleets (`nofuss fleet`) update against the real nofussd, and the inventory
(the SQLite file, read with python's sqlite3, read-only) then holds exactly
what happened: 1,000 devices confirmed with their downloads; a firmware
that crashes at boot reverted on every device; downloads cut by a proxy
failed, then completed and confirmed; and everything still queued when
SIGTERM comes written before nofussd exits. Also the settings: --check
opens (creates, migrates) the store and says so, bad values are refused
with clear errors, and `store = off` writes nothing.

Every run is bounded (the fleet's --timeout, subprocess timeouts)."""
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import unittest

from fleetstore import (CLIENT_NOFUSS_HEADER, CONFIRMED, DOWNLOADING, H_CONFIRMED, H_DOWNLOADING,
                        H_DOWNLOADED, H_FAILED, H_OFFERED, H_REVERTED, NONE, REVERTED, Proxy,
                        cut_first_download_per_device, sqlite_inventory)
from harness import NOFUSSD, DataDir, check_headers, get, md5
from test_device import DEVICE, FW_SIZE, FS_SIZE, image_bytes
from test_fleet import FS_AND_FW, FleetTest, mac, run_fleet, size_bytes

CHECK_TIMEOUT = 60
NOFUSS = os.environ.get("NOFUSS")
ADMIN_TOKEN = "fleet-admin-0123456789abcdef"


class StoreFleetTest(FleetTest):
    def db_path(self):
        return os.path.join(self.data.path, "store", "fleet.db")

    def stop_and_read(self):
        """SIGTERM (everything queued is written), then the inventory."""
        rc = self.server.stop()
        self.assertEqual(rc, 0, self.server.stderr())
        stderr = self.server.stderr()
        self.server = None
        m = re.search(r"store: (\d+) events written, (\d+) dropped", stderr)
        self.assertIsNotNone(m, stderr)
        self.assertEqual(m.group(2), "0", stderr)
        return sqlite_inventory(self.db_path()), int(m.group(1))

    def admin_summary(self, port):
        """The admin API's fleet summary, once every device's last check is
        written (the writer commits within a batch interval, later on a
        loaded machine): bounded at 20 s."""
        deadline = time.monotonic() + 20
        while True:
            r = get(port, "/api/v1/summary", {"Authorization": "Bearer " + ADMIN_TOKEN})
            self.assertEqual(r.status, 200, r.body)
            summary = json.loads(r.body)
            if summary["by_state"]["confirmed"] == 1000 or time.monotonic() > deadline:
                return summary
            time.sleep(0.1)

    def test_1000_devices_confirmed(self):
        fw = self.data.public + "/firmware/test-0.1.1.bin"
        fs = self.data.public + "/firmware/test-0.1.1-fs.bin"
        tokens = os.path.join(self.tmp, "admin-tokens")
        with open(fw, "rb") as f:
            fw_md5 = md5(f.read())
        with open(tokens, "w") as f:
            f.write(ADMIN_TOKEN + " admin fleet-test\n")
        os.chmod(tokens, 0o600)
        self.start("--admin-token-file", tokens, "--admin-port", "0")
        line = self.server.wait_for(r"admin API at http://127\.0\.0\.1:(\d+)/")
        admin_port = int(re.search(r":(\d+)/", line).group(1))
        r = run_fleet(self.url(), "--until-updated", "--ramp", "2", "--reboot-delay", "0.05",
                      "--interval", "0.5", "--concurrency", "128", "-q", n=1000)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual((r["updated"], r["failed"], r["checks"], r["checks_failed"]),
                         (1000, 0, 2000, 0), str(r))
        # What an operator sees: the API's summary and `nofuss devices`.
        summary = self.admin_summary(admin_port)
        self.assertEqual(summary["devices"], 1000, summary)
        self.assertEqual(summary["by_state"]["confirmed"], 1000, summary)
        self.assertEqual(sum(summary["by_state"].values()), 1000, summary)
        self.assertEqual([(v["type"], v["version"], v["devices"])
                          for v in summary["by_type_version"]], [(DEVICE, "0.1.1", 1000)], summary)
        cli = subprocess.run([NOFUSS, "devices", "--state", "confirmed", "--json", "--all",
                              "--server", "http://127.0.0.1:%d" % admin_port,
                              "--token-file", tokens],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(cli.returncode, 0, cli.stderr)
        page = json.loads(cli.stdout)
        self.assertEqual((page["total"], page["count"]), (1000, 1000))
        self.assertEqual({d["mac"] for d in page["devices"]}, {mac(i) for i in range(1000)})
        table = subprocess.run([NOFUSS, "devices", "--version", "0.1.1",
                                "--server", "http://127.0.0.1:%d" % admin_port,
                                "--token-file", tokens],
                               capture_output=True, text=True, timeout=60)
        self.assertEqual(table.returncode, 0, table.stderr)
        self.assertIn("1000", table.stdout)
        inv, written = self.stop_and_read()
        # Per device: two checks and four downloads events (start and end of
        # firmware and filesystem).
        self.assertEqual(written, 1000 * 2 + 1000 * 4)
        self.assertEqual(set(inv), {mac(i) for i in range(1000)})
        states = {}
        for d in inv.values():
            states[d.state] = states.get(d.state, 0) + 1
        self.assertEqual(states, {CONFIRMED: 1000})
        for key, d in inv.items():
            self.assertEqual((d.version, d.checks, d.client), ("0.1.1", 2, CLIENT_NOFUSS_HEADER),
                             key)
            self.assertEqual((d.img0_path, d.img0_md5, d.img0_size, d.img0_bytes, d.img0_done),
                             ("/firmware/test-0.1.1.bin", fw_md5, size_bytes(FW_SIZE),
                              size_bytes(FW_SIZE), 1), key)
            self.assertEqual((d.img1_path, d.img1_bytes, d.img1_done),
                             ("/firmware/test-0.1.1-fs.bin", size_bytes(FS_SIZE), 1), key)
            self.assertEqual(d.history[0], H_OFFERED, key)
            self.assertEqual(d.history[-2:], [H_DOWNLOADED, H_CONFIRMED], key)
        self.assertEqual(os.path.getsize(fs), size_bytes(FS_SIZE))

    def test_path_form_fleet_one_record_per_device(self):
        """100 path-form devices, all at 127.0.0.1, each of its own device
        type with its own image (at one IP the store tells MAC-less devices
        apart only by type, and their downloads by the image their offer
        names: docs/STORE.md section 4). Their updater's downloads carry
        x-ESP8266-STA-MAC; each goes to the device its check made: 100
        records "Pnn@127.0.0.1", each confirmed after its download, and none
        for a MAC."""
        names = ["P%02d" % i for i in range(100)]
        rules = []
        for name in names:
            path = "/firmware/%s-0.1.1.bin" % name
            self.data.add_file(path, image_bytes(self.tmp, "0.1.1"))
            rules.append({"origin": {"device": name, "max": "0.1.0"},
                          "target": {"version": "0.1.1", "firmware": path}})
        self.data.write_rules(rules)
        self.start()
        # A fleet takes at most 64 names: two fleets of 50 at once.
        runs = [None, None]

        def half(k):
            runs[k] = run_fleet(self.url(), "--path-form", "--device",
                                ",".join(names[50 * k:50 * k + 50]), "--mac-base", mac(50 * k),
                                "--until-updated", "--ramp", "1", "--reboot-delay", "0.05",
                                "--interval", "0.5", "-q", n=50)
        threads = [threading.Thread(target=half, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for r in runs:
            self.assertEqual(r.rc, 0, str(r))
            self.assertEqual((r["updated"], r["failed"], r["checks_failed"]), (50, 0, 0), str(r))
        inv, written = self.stop_and_read()
        self.assertEqual(set(inv), {name + "@127.0.0.1" for name in names})
        for key, d in inv.items():
            path = "/firmware/%s-0.1.1.bin" % key.split("@")[0]
            self.assertEqual((d.version, d.state, d.client), ("0.1.1", CONFIRMED, 1), key)
            self.assertEqual((d.img0_path, d.img0_bytes, d.img0_done),
                             (path, size_bytes(FW_SIZE), 1), key)
            self.assertEqual(d.history[0], H_OFFERED, key)
            self.assertEqual(d.history[-2:], [H_DOWNLOADED, H_CONFIRMED], key)
        # Two checks and two download events (start, end) per device.
        self.assertEqual(written, 100 * 2 + 100 * 2)

    def test_crash_at_boot_reverted(self):
        self.data.add_file("firmware/crash.bin", image_bytes(self.tmp, "0.1.1", "--crash"))
        self.data.write_rules([{"origin": {"device": DEVICE, "max": "0.1.0"},
                                "target": {"version": "0.1.1",
                                           "firmware": "/firmware/crash.bin"}}])
        self.start()
        # One attempt each: install, trial boot, crash, back on 0.1.0.
        r = run_fleet(self.url(), "--until-updated", "--give-up", "1", "--interval", "0.1",
                      "--reboot-delay", "0.02", "-q", n=50)
        self.assertEqual((r["failed"], r["updated"], r["checks"]), (50, 0, 50), str(r))
        # The rule withdrawn: the next check reports 0.1.0 after a complete
        # download, which is what reverted means.
        self.set_rules([])
        r = run_fleet(self.url(), "--until-updated", "--interval", "0.1", "-q", n=50)
        self.assertEqual((r["up_to_date"], r["checks"]), (50, 50), str(r))
        inv, _ = self.stop_and_read()
        self.assertEqual(len(inv), 50)
        for key, d in inv.items():
            self.assertEqual((d.state, d.version, d.checks), (REVERTED, "0.1.0", 2), key)
            self.assertEqual(d.history[-2:], [H_DOWNLOADED, H_REVERTED], key)

    def test_cut_download_failed_then_confirmed(self):
        # A small send buffer, so that nofussd holds most of the image when
        # the proxy cuts (else the kernel takes it all and it "went out").
        self.start("--sndbuf", "4096")
        proxy = Proxy([self.server.port], cut_first_download_per_device(8192))
        try:
            r = run_fleet(proxy.url(), "--until-updated", "--interval", "0.2",
                          "--reboot-delay", "0.05", "--give-up", "5", "-q", n=30)
        finally:
            proxy.close()
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual((r["updated"], r["failed"]), (30, 0), str(r))
        self.assertEqual(proxy.cuts, 30)
        inv, _ = self.stop_and_read()
        self.assertEqual(len(inv), 30)
        # How far each cut download got: what the proxy's side acknowledged
        # (TCP_INFO) when nofussd saw the cut, short of the image. Not
        # bounded below by the 8 KiB the proxy passed on: its last ACKs may
        # still be in flight when the cut arrives (seen once under ASan: 6,433).
        db = sqlite3.connect("file:%s?mode=ro" % self.db_path(), uri=True)
        cut_at = [b for (b,) in db.execute("SELECT bytes FROM history WHERE kind = ?",
                                           (H_FAILED,))]
        db.close()
        self.assertEqual(len(cut_at), 30)
        for b in cut_at:
            self.assertTrue(0 < b < size_bytes(FW_SIZE), cut_at)
        for key, d in inv.items():
            self.assertEqual(d.state, CONFIRMED, key)
            self.assertIn(H_FAILED, d.history, key)
            after = d.history[d.history.index(H_FAILED):]
            self.assertEqual(after[-2:], [H_DOWNLOADED, H_CONFIRMED], key)
            self.assertEqual(d.img0_bytes, size_bytes(FW_SIZE), key)

    def test_sigterm_writes_everything_queued(self):
        """The database locked by another connection: the writer cannot
        commit, 3,000 checks queue up; SIGTERM, then the lock goes: every
        one is written before nofussd exits."""
        self.start()
        locker = sqlite3.connect(self.db_path(), timeout=5, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        n = 3000
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            for i in range(0, n, 100):
                self.send_checks(s, i, 100, b"SIGTERM")
        self.server.signal(signal.SIGTERM)
        time.sleep(1.0)
        self.assertIsNone(self.server.proc.poll(), "exited with the database locked")
        locker.execute("ROLLBACK")
        locker.close()
        inv, written = self.stop_and_read()
        self.assertEqual(written, n)
        self.assertEqual(len(inv), n)
        self.assertTrue(all(d.state == NONE and d.checks == 1 for d in inv.values()))


    def send_checks(self, sock, first, count, device):
        sock.sendall(b"".join(
            b"GET / HTTP/1.1\r\nHost: x\r\nX-ESP8266-MAC: %s\r\n"
            b"X-ESP8266-DEVICE: %s\r\nX-ESP8266-VERSION: 1.0\r\n\r\n"
            % (mac(j, 0x020000000000).encode(), device) for j in range(first, first + count)))
        got = b""
        while got.count(b"HTTP/1.1 200") < count:
            chunk = sock.recv(65536)
            self.assertTrue(chunk, "connection closed")
            got += chunk

    def test_kill_9_loses_at_most_the_last_second(self):
        """Checks at a steady 1,000 a second for 3 s, then SIGKILL right
        after the last answer: what is lost is at most the last second's
        events (the writer commits every 200 ms, docs/STORE.md section 6)."""
        self.start()
        rate, seconds, step = 1000, 3, 50
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            for i in range(0, rate * seconds, step):
                due = start + i / rate
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())
                self.send_checks(s, i, step, b"KILL")
        self.server.proc.kill()
        self.server.proc.wait(10)
        self.server = None
        kept = len(sqlite_inventory(self.db_path()))
        lost = rate * seconds - kept
        print("kill -9: %d of %d checks recorded, %d lost (%.2f s of checks)"
              % (kept, rate * seconds, lost, lost / rate))
        self.assertGreater(kept, 0)
        self.assertLessEqual(lost, rate)

    def test_identity(self):
        """The MAC in any accepted form is one device; a MAC that is none
        (all zeros, too long) and the path form key by device type and IP."""
        self.start()
        macs = [b"5c-cf-7f-00-00-aa", b"5CCF7F0000AA", b"00:00:00:00:00:00",
                b"5C:CF:7F:00:00:AA:00"]
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            s.sendall(b"".join(
                b"GET / HTTP/1.1\r\nHost: x\r\nX-ESP8266-MAC: %s\r\n"
                b"X-ESP8266-DEVICE: ID\r\nX-ESP8266-VERSION: 1.0\r\n\r\n" % m for m in macs)
                + b"GET /PATHDEV/1.0 HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            while got.count(b"HTTP/1.1 200") < 5:
                chunk = s.recv(65536)
                self.assertTrue(chunk, "connection closed")
                got += chunk
        inv, written = self.stop_and_read()
        self.assertEqual(written, 5)
        self.assertEqual({k: d.checks for k, d in inv.items()},
                         {"5C:CF:7F:00:00:AA": 2, "ID@127.0.0.1": 2, "PATHDEV@127.0.0.1": 1})

    def test_ranges_and_head(self):
        """A HEAD sends no image: no download. A range short of the end is
        progress (bytes reached), not the end; the range up to the end is."""
        self.start()
        dev = "5C:CF:7F:00:00:BB"
        fw = "/firmware/test-0.1.1.bin"
        size = size_bytes(FW_SIZE)
        updater = {"x-ESP8266-STA-MAC": dev, "x-ESP8266-mode": "sketch"}
        r = get(self.server.port, "/", check_headers(dev, DEVICE, "0.1.0"))
        self.assertEqual(r.status, 200)
        self.assertEqual(get(self.server.port, fw, updater, method="HEAD").status, 200)
        r = get(self.server.port, fw, dict(updater, Range="bytes=0-999"))
        self.assertEqual((r.status, len(r.body)), (206, 1000))
        inv, written = self.stop_and_read()
        d = inv[dev]
        self.assertEqual(written, 3)  # the check, the range's start and its end
        self.assertEqual((d.state, d.img0_bytes, d.img0_done, d.img0_size),
                         (DOWNLOADING, 1000, 0, size))

        self.start()
        r = get(self.server.port, fw, dict(updater, Range="bytes=1000-"))
        self.assertEqual((r.status, len(r.body)), (206, size - 1000))
        inv, written = self.stop_and_read()
        d = inv[dev]
        self.assertEqual(written, 2)
        self.assertEqual((d.img0_bytes, d.img0_done), (size, 1))
        self.assertEqual(d.history, [H_OFFERED, H_DOWNLOADING])  # the filesystem is left

class StoreSettingsTest(unittest.TestCase):
    def setUp(self):
        self.data = DataDir(FS_AND_FW)

    def tearDown(self):
        self.data.cleanup()

    def check(self, *args):
        return subprocess.run([NOFUSSD, "-d", self.data.path, "--check"] + list(args),
                              capture_output=True, text=True, timeout=CHECK_TIMEOUT)

    def test_check_creates_and_migrates(self):
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stderr)
        path = os.path.join(self.data.path, "store", "fleet.db")
        self.assertIn("store sqlite://%s: schema 6, ok" % path, r.stdout)
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        self.assertEqual(db.execute("SELECT max(version) FROM nf_schema").fetchone(), (6,))
        db.close()
        other = os.path.join(self.data.path, "elsewhere.db")
        r = self.check("--store", "sqlite://" + other)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(other))

    def test_off(self):
        r = self.check("--store", "off")
        self.assertEqual((r.returncode, r.stdout.splitlines()[-1]), (0, "nofussd: store off"))
        self.assertFalse(os.path.exists(os.path.join(self.data.path, "store")))

    def test_bad_values(self):
        cases = [
            (("--store", "mysql://u:secret@h/x"), 1,
             'store: "mysql:..." is not sqlite:///PATH, postgresql://..., off or none'),
            (("--store-queue", "10"), 2, '"10" is not a number from 1024 to 1048576'),
            (("--store-history", "0"), 2, '"0" is not a number from 1 to 1000'),
            (("--store-silent", "1d"), 2, '"1d" is not a number from 60 to 31622400'),
            # Unreachable: a start-up error, the password never shown.
            (("--store", "postgresql://u:secret@127.0.0.1:1/x"), 3,
             "store postgresql://u:***@127.0.0.1:1/x: "),
            (("--store", "sqlite:///nonexistent-nofuss/a/b.db"), 3, "cannot be made"),
        ]
        for args, status, message in cases:
            r = self.check(*args)
            self.assertEqual(r.returncode, status, (args, r.stderr))
            self.assertIn(message, r.stderr, args)
            self.assertNotIn("secret", r.stderr + r.stdout)

    def test_config_file_keys(self):
        conf = os.path.join(self.data.path, "n.conf")
        with open(conf, "w") as f:
            f.write("[nofussd]\nstore = none\nstore-queue = 2048\nstore-history = 8\n"
                    "store-silent = 3600\n")
        r = subprocess.run([NOFUSSD, "-c", conf, "-d", self.data.path, "--check"],
                           capture_output=True, text=True, timeout=CHECK_TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("nofussd: store off", r.stdout)


if __name__ == "__main__":
    unittest.main()
