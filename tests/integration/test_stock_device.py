"""`nofuss device --client KIND` against the real nofussd: a simulated
device running a stock ESP8266 or ESP32 updater, Tasmota or ESPHome goes from
0.1.0 to 0.1.1 with one request (ESPHome: the manifest, then the image),
reboots into the new slot, and then finds itself current, alone and as a
50-device `nofuss fleet`; an image larger
than the free space is held back and the device stays where it is
(docs/SIMULATOR.md, docs/PROTOCOL.md section 5)."""
import json
import os
import re
import shutil
import signal
import tempfile
import unittest

from fleetstore import CONFIRMED, H_CONFIRMED, H_DOWNLOADED, H_OFFERED, sqlite_inventory
from harness import DataDir, Server, wait_until
from test_device import BOOT_RX, HALT_RX, mkimage, nofuss

KINDS = ("nofuss", "nofuss-path", "esp8266-updater", "esp32-updater", "tasmota", "esphome")
# enum nf_client_kind (server/store/store.h), as the store keeps it.
CLIENT_KINDS = {"nofuss-path": 1, "nofuss": 2, "esp8266-updater": 3, "esp32-updater": 4,
                "esphome": 5, "tasmota": 6}


class StockDeviceTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nofuss-stock-")
        self.data = DataDir([])
        fw = os.path.join(self.data.public, "firmware")
        os.makedirs(fw)
        self.image = mkimage(os.path.join(fw, "test-0.1.1.bin"), "0.1.1")
        mkimage(os.path.join(fw, "big.bin"), "0.1.1", size="128K", device="BIG")
        self.data.write_rules([
            {"origin": {"device": "TEST", "lt": "0.1.1"},
             "target": {"version": "0.1.1", "firmware": "/firmware/test-0.1.1.bin"}},
            {"origin": {"device": "BIG", "lt": "0.1.1"},
             "target": {"version": "0.1.1", "firmware": "/firmware/big.bin"}}])
        self.server = Server(self.data, "-v")

    def tearDown(self):
        rc = self.server.stop()
        self.data.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(rc, 0)

    def device(self, kind, name="TEST", *extra):
        flash = os.path.join(self.tmp, kind + name)
        return nofuss("device", "--flash", flash, "--device", name, "--version", "0.1.0",
                      "--slot-size", "96K", "--server", "http://127.0.0.1:%d/" % self.server.port,
                      "--client", kind, "--until-up-to-date", "--max-checks", "3", *extra)

    def test_every_client_kind_updates(self):
        for kind in KINDS:
            with self.subTest(kind=kind):
                r = self.device(kind)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                boots = [BOOT_RX.match(l).groups() for l in r.stdout.splitlines()
                         if BOOT_RX.match(l)]
                self.assertEqual([(b[0], b[1]) for b in boots], [("a", "0.1.0"), ("b", "0.1.1")],
                                 r.stdout)
                halt = HALT_RX.match(r.stdout.splitlines()[-1])
                self.assertEqual(halt.group(1, 2), ("2", "2"), r.stdout)
                if kind not in ("nofuss", "nofuss-path"):
                    self.assertIn("[stock] no update: 0.1.1 is current", r.stdout)

    def test_every_client_kind_confirmed_in_the_inventory(self):
        """Each kind that sends a MAC, one device each, is recorded with its
        client kind and the proof of its update: a stock updater takes only
        the firmware, so its offer is downloaded with it, and confirmed by
        its next check (its version, or its sketch's MD5)."""
        kinds = ("nofuss", "esp8266-updater", "esp32-updater", "tasmota")
        # A rule with a filesystem image too: a NoFUSS client takes both, a
        # stock updater in sketch mode only the firmware.
        mkimage(os.path.join(self.data.public, "firmware", "test-0.1.1-fs.bin"), "0.1.1", "--fs",
                size="16K")
        self.data.write_rules([
            {"origin": {"device": "TEST", "lt": "0.1.1"},
             "target": {"version": "0.1.1", "firmware": "/firmware/test-0.1.1.bin",
                        "spiffs": "/firmware/test-0.1.1-fs.bin"}}])
        seen = self.server.line_count()
        self.server.signal(signal.SIGHUP)
        self.server.wait_for(r"reloaded .*: 1 rules", 10, start=seen)
        for i, kind in enumerate(kinds):
            with self.subTest(kind=kind):
                r = self.device(kind, "TEST", "--mac", "02:00:00:00:00:%02X" % i)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.server.stop(), 0)
        self.server = Server(self.data)  # for tearDown
        inv = sqlite_inventory(os.path.join(self.data.path, "store", "fleet.db"))
        self.assertEqual({key: (d.version, d.state, d.client) for key, d in inv.items()},
                         {"02:00:00:00:00:%02X" % i: ("0.1.1", CONFIRMED, CLIENT_KINDS[kind])
                          for i, kind in enumerate(kinds)})
        # Downloaded (every offered byte served) before confirmed: without
        # that, a stock device whose image failed to boot would never show
        # as reverted.
        for key, d in inv.items():
            self.assertEqual(d.history[-2:], [H_DOWNLOADED, H_CONFIRMED], key)

    def test_path_form_device_is_one_device_in_the_inventory(self):
        """A path-form NoFUSS device checks without a MAC (key "TEST@IP")
        but downloads with the ESP8266 updater, which sends
        x-ESP8266-STA-MAC: the download goes to the device its check made,
        and no device is made for the MAC (docs/STORE.md section 4)."""
        r = self.device("nofuss-path", "TEST", "--mac", "02:00:00:00:00:01")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.server.stop(), 0)
        self.server = Server(self.data)  # for tearDown
        inv = sqlite_inventory(os.path.join(self.data.path, "store", "fleet.db"))
        self.assertEqual(list(inv), ["TEST@127.0.0.1"])
        d = inv["TEST@127.0.0.1"]
        self.assertEqual((d.version, d.state, d.client, d.checks),
                         ("0.1.1", CONFIRMED, CLIENT_KINDS["nofuss-path"], 2))
        self.assertEqual((d.img0_path, d.img0_done, d.img0_bytes),
                         ("/firmware/test-0.1.1.bin", 1, len(self.image)))
        self.assertEqual(d.history[0], H_OFFERED, d.history)
        self.assertEqual(d.history[-2:], [H_DOWNLOADED, H_CONFIRMED], d.history)

    def test_esphome_telling_its_version_is_confirmed(self):
        """ESPHome sends no version, so its update ends "downloaded"; built
        with source: .../manifest.json?version=${version} (--url-version) it
        tells it, and the store sees the update confirmed."""
        r = self.device("esphome", "TEST", "--url-version")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("/esphome/TEST/manifest.json?version=0.1.0 as esphome 0.1.0", r.stdout)
        self.assertIn("/esphome/TEST/manifest.json?version=0.1.1 as esphome 0.1.1", r.stdout)
        self.assertIn("[stock] no update: 0.1.1 is current", r.stdout)
        bad = nofuss("device", "--flash", os.path.join(self.tmp, "x"), "--device", "TEST",
                     "--version", "0.1.0", "--server", "http://127.0.0.1:1/",
                     "--client", "tasmota", "--url-version", "--once")
        self.assertEqual(bad.returncode, 2, bad.stderr)
        self.assertIn("--url-version is for --client esphome", bad.stderr)
        self.assertEqual(self.server.stop(), 0)
        self.server = Server(self.data)  # for tearDown
        inv = sqlite_inventory(os.path.join(self.data.path, "store", "fleet.db"))
        d = inv["TEST@127.0.0.1"]
        self.assertEqual((d.version, d.state, d.client, d.checks),
                         ("0.1.1", CONFIRMED, CLIENT_KINDS["esphome"], 2))
        self.assertEqual(d.history[-2:], [H_DOWNLOADED, H_CONFIRMED], d.history)

    def test_stock_requests_carry_the_clients_headers(self):
        r = self.device("esphome")
        self.assertIn("/esphome/TEST/manifest.json as esphome 0.1.0", r.stdout)
        self.assertIn("[stock] manifest offers 0.1.1", r.stdout)
        r = self.device("tasmota")
        self.assertIn("/update/TEST.bin.gz as tasmota 0.1.0", r.stdout)

    def test_too_big_is_held_back(self):
        # A 128 KiB image for a 96 KiB slot: 304, the device stays on 0.1.0
        # and takes it for "current", as the real updater does.
        for kind in ("esp8266-updater", "esp32-updater", "tasmota"):
            with self.subTest(kind=kind):
                r = self.device(kind, "BIG")
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn("[stock] no update: 0.1.0 is current", r.stdout)
                self.server.wait_for(re.escape("BIG: held back: image 128 KiB, 96 KiB free"), 10)

    def test_fleet_of_every_client_kind_updates(self):
        # 50 devices per kind, concurrently (curl's multi interface): each
        # updates once, reboots into 0.1.1 and then finds itself current.
        for kind in KINDS:
            with self.subTest(kind=kind):
                r = nofuss("fleet", "--server", "http://127.0.0.1:%d/" % self.server.port,
                           "--devices", 50, "--device", "TEST", "--version", "0.1.0",
                           "--client", kind, "--until-updated", "--ramp", "0.2",
                           "--reboot-delay", "0.05", "--interval", "0.1", "--json",
                           "--timeout", 60, "--seed", 1)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr[-3000:])
                summary = json.loads(r.stdout)
                self.assertEqual((summary["updated"], summary["failed"], summary["unfinished"]),
                                 (50, 0, 0), r.stdout)

    def test_fleet_from_source_ips_is_a_device_each(self):
        # Without a MAC, a check is known by device type and IP: with
        # --source-ips each of the 40 devices connects from its own loopback
        # address and is a device of its own, confirmed (ESPHome tells its
        # version with --url-version). Device type TEST in path form, then
        # TEST2 as ESPHome (the same addresses, other records).
        db = os.path.join(self.data.path, "store", "fleet.db")
        self.data.write_rules([
            {"origin": {"device": "*", "lt": "0.1.1"},
             "target": {"version": "0.1.1", "firmware": "/firmware/test-0.1.1.bin"}}])
        self.server.wait_for("reloaded", 10)
        for kind, name, extra in (("nofuss-path", "TEST", []),
                                  ("esphome", "TEST2", ["--url-version"])):
            with self.subTest(kind=kind):
                r = nofuss("fleet", "--server", "http://127.0.0.1:%d/" % self.server.port,
                           "--devices", 40, "--device", name, "--version", "0.1.0",
                           "--client", kind, "--source-ips", "--until-updated", "--ramp", "0.2",
                           "--reboot-delay", "0.05", "--interval", "0.1", "--json",
                           "--timeout", 60, "--seed", 1, *extra)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr[-3000:])
                self.assertEqual(json.loads(r.stdout)["updated"], 40, r.stdout)
                want = {"%s@127.1.0.%d" % (name, i + 1) for i in range(40)}

                def records():
                    inv = sqlite_inventory(db)
                    return {k: (d.version, d.state, d.client) for k, d in inv.items()
                            if k.startswith(name + "@")}
                self.assertTrue(wait_until(lambda: records() == {
                    k: ("0.1.1", CONFIRMED, CLIENT_KINDS[kind]) for k in want}, timeout=10),
                    records())

    def test_bad_client_name(self):
        r = nofuss("device", "--flash", os.path.join(self.tmp, "x"), "--client", "espurna",
                   "--server", "http://127.0.0.1:1/")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--client: \"espurna\": not one of", r.stderr)


if __name__ == "__main__":
    unittest.main()
