"""Stock ESP8266/ESP32 updaters, Tasmota and ESPHome against the real
nofussd, from their byte-exact requests (tests/fixtures/requests/): 304 when
current, 200 with x-MD5 and the right image otherwise, the filesystem image
in filesystem mode, "held back" when the image does not fit, Tasmota's .gz,
-minimal and safeboot, the ESPHome manifest, and the URL scheme's collision
rules (docs/PROTOCOL.md section 5, docs/PEERS.md section 9)."""
import json
import os
import re
import unittest

from harness import (DataDir, Server, ServerTest, check_headers, fixture, get, md5,
                     raw_request, wait_until)


def image(tag, size, flash_code=2, load=0x40100000, esp32_chip=None):
    """An application image: 0xE9, flash size code in byte 3's high nibble;
    an ESP8266 one (first segment loaded in IRAM at 0x4010xxxx) or an ESP32
    one with an extended header naming esp32_chip."""
    head = bytearray([0xE9, 0x03, 0x02, flash_code << 4, 0x00, 0x10, 0x10, 0x40])
    if esp32_chip is None:
        head += load.to_bytes(4, "little") + (1024).to_bytes(4, "little")
    else:
        head += bytes([0xEE, 0, 0, 0]) + esp32_chip.to_bytes(2, "little") + bytes(10)
    head += tag.encode()
    return bytes(head) + bytes((i * 7 + 3) & 0xFF for i in range(size - len(head)))


def gz(tag, size):
    return b"\x1f\x8b\x08\x00" + tag.encode() + bytes((i * 11) & 0xFF for i in range(size - 4 - len(tag)))


FW_100 = image("sonoff-1.0.0", 30000)
FW_110 = image("sonoff-1.1.0", 40000)
FS_110 = b"FS" + bytes(range(256)) * 2800          # 716,802 bytes: more than the free space
BIG = image("big", 700000)                          # free space in the fixtures: 655,360
FLASH_4M = image("4m", 50000, flash_code=4)         # the fixtures' chip: 1 MiB
GATEWAY = image("gw-2.0.0", 60000, esp32_chip=0)
H2 = image("h2-1.0", 50000, esp32_chip=0x10)
TAS_FULL = gz("tasmota-14.4.0", 500000)             # Tasmota's free space: 389,120
TAS_MIN = gz("tasmota-minimal-14.4.0", 300000)
TAS32 = image("tasmota32-14.3.0", 90000, esp32_chip=0)
LIVING = image("livingroom-1.1.0", 35000)
KITCHEN_C3 = image("kitchen", 36000, esp32_chip=5)

RULES = [
    {"origin": {"device": "SONOFF", "lt": "1.1.0"},
     "target": {"version": "1.1.0", "firmware": "/firmware/sonoff-1.1.0.bin",
                "spiffs": "/firmware/sonoff-1.1.0-fs.bin"}},
    {"origin": {"device": "LEGACY"},
     "target": {"version": "1.0.0", "firmware": "/firmware/sonoff-1.0.0.bin"}},
    {"origin": {"device": "BIG"}, "target": {"version": "2.0", "firmware": "/firmware/big.bin"}},
    {"origin": {"device": "FLASH4M"}, "target": {"version": "2.0", "firmware": "/firmware/4m.bin"}},
    # A rule keyed on an all-zero AP MAC must never match anything.
    {"origin": {"device": "GATEWAY", "mac": ["00:00:00:00:00:00"]},
     "target": {"version": "6.6.6", "firmware": "/firmware/big.bin"}},
    {"origin": {"device": "GATEWAY", "mac": ["24:0A:C4:12:34:56"], "lt": "2.0.0"},
     "target": {"version": "2.0.0", "firmware": "/firmware/gateway-2.0.0.bin"}},
    {"origin": {"device": "H2SENSOR", "mac": ["74:4D:BD:00:11:22"]},
     "target": {"version": "1.0", "firmware": "/firmware/h2.bin"}},
    {"origin": {"device": "SONOFF_BASIC", "lt": "14.4.0"},
     "target": {"version": "14.4.0", "firmware": "/tasmota/tasmota-14.4.0.bin.gz",
                "minimal": "/tasmota/tasmota-minimal-14.4.0.bin.gz"}},
    {"origin": {"device": "TASMOTA32"},
     "target": {"version": "14.3.0", "firmware": "/tasmota/tasmota32-14.3.0.bin"}},
    {"origin": {"device": "livingroom"},
     "target": {"version": "1.1.0", "firmware": "/firmware/livingroom-1.1.0.bin",
                "summary": "Fixes \"the\" lamp", "release_url": "https://example.com/r/1.1.0"}},
    {"origin": {"device": "kitchen"},
     "target": {"version": "2.0.0", "firmware": "/firmware/kitchen.bin"}},
    {"origin": {"device": "update", "lt": "2"},
     "target": {"version": "2.0", "firmware": "/firmware/sonoff-1.1.0.bin"}},
    {"origin": {"device": "ESPURNA_SONOFF_BASIC"},
     "target": {"version": "1.14.0", "firmware": "/firmware/4m.bin"}},
]
FILES = {
    "firmware/sonoff-1.0.0.bin": FW_100,
    "firmware/sonoff-1.1.0.bin": FW_110,
    "firmware/sonoff-1.1.0-fs.bin": FS_110,
    "firmware/big.bin": BIG,
    "firmware/4m.bin": FLASH_4M,
    "firmware/gateway-2.0.0.bin": GATEWAY,
    "firmware/h2.bin": H2,
    "tasmota/tasmota-14.4.0.bin.gz": TAS_FULL,
    "tasmota/tasmota-minimal-14.4.0.bin.gz": TAS_MIN,
    "tasmota/tasmota32-14.3.0.bin": TAS32,
    "firmware/livingroom-1.1.0.bin": LIVING,
    "firmware/kitchen.bin": KITCHEN_C3,
}


def with_header(data, name, value):
    """data with one header's value replaced (the header must be there)."""
    out, n = re.subn(rb"\r\n" + name.encode() + rb": [^\r]*\r\n",
                     b"\r\n" + name.encode() + b": " + value.encode() + b"\r\n", data, 1)
    assert n == 1, name
    return out


def with_path(data, path):
    return re.sub(rb"^GET [^ ]+ ", b"GET " + path.encode() + b" ", data, 1)


class StockTest(unittest.TestCase):
    """One server (verbose, to see why a check is held back) on the data."""

    @classmethod
    def setUpClass(cls):
        cls.data = DataDir(RULES, FILES)
        cls.server = Server(cls.data, "-v")
        cls.prefixed = Server(cls.data, "--base", "/nofuss", check_log=cls.data.path + "/p.log")

    @classmethod
    def tearDownClass(cls):
        rcs = (cls.server.stop(), cls.prefixed.stop())
        cls.data.cleanup()
        assert rcs == (0, 0), rcs

    def send(self, data, server=None):
        server = server or self.server
        r, _ = raw_request(server.port, fixture_bytes(data, server.port))
        return r

    def assert_image(self, r, body):
        self.assertEqual(r.status, 200, r.body[:200])
        self.assertEqual(int(r.header("Content-Length")), len(body))
        self.assertEqual(r.header("x-MD5"), md5(body))
        self.assertTrue(r.body == body, "wrong image")

    def assert_not_modified(self, r):
        self.assertEqual(r.status, 304, r.body[:200])
        self.assertEqual(r.body, b"")

    def assert_held(self, reason):
        self.server.wait_for(re.escape("held back: " + reason), 10)

    # ESP8266 updater -------------------------------------------------------
    def test_esp8266_offered_the_rules_image(self):
        self.assert_image(self.send(fixture("esp8266-httpupdate-3.1-update-url.http")), FW_110)

    def test_esp8266_current_by_version_gets_304(self):
        data = with_header(fixture("esp8266-httpupdate-3.1-update-url.http"),
                           "x-ESP8266-version", "1.1.0")
        self.assert_not_modified(self.send(data))

    def test_esp8266_without_version_is_known_by_its_sketch_md5(self):
        data = fixture("esp8266-httpupdate-3.1-no-version.http")
        # Running the 1.0.0 image (LEGACY's): below 1.1.0, offered 1.1.0.
        self.assert_image(self.send(with_header(data, "x-ESP8266-sketch-md5", md5(FW_100))),
                          FW_110)
        # Running 1.1.0 itself: current.
        self.assert_not_modified(
            self.send(with_header(data, "x-ESP8266-sketch-md5", md5(FW_110).upper())))

    def test_esp8266_filesystem_mode_gets_the_filesystem_image(self):
        # Bigger than the reported free sketch space, and still offered: in
        # filesystem mode that number is not the filesystem's.
        r = self.send(fixture("esp8266-httpupdate-3.1-fs.http"))
        self.assert_image(r, FS_110)
        data = with_header(fixture("esp8266-httpupdate-3.1-fs.http"), "x-ESP8266-version", "1.1.0")
        self.assert_not_modified(self.send(data))

    def test_held_back_when_larger_than_the_free_space(self):
        data = with_path(fixture("esp8266-httpupdate-3.1-update-url.http"), "/update/BIG")
        self.assert_not_modified(self.send(data))
        self.assert_held("image 684 KiB, 640 KiB free")
        more = with_header(data, "x-ESP8266-free-space", "1048576")
        self.assert_image(self.send(more), BIG)

    def test_held_back_when_built_for_a_bigger_flash(self):
        data = with_path(fixture("esp8266-httpupdate-3.1-update-url.http"), "/update/FLASH4M")
        self.assert_not_modified(self.send(data))
        self.assert_held("image built for 4096 KiB flash, chip has 1024 KiB")
        self.assert_image(self.send(with_header(data, "x-ESP8266-chip-size", "4194304")), FLASH_4M)

    def test_no_rule_is_304(self):
        data = with_path(fixture("esp8266-httpupdate-3.1-update-url.http"), "/update/NOBODY")
        self.assert_not_modified(self.send(data))

    def test_version_query(self):
        data = with_header(fixture("esp8266-httpupdate-3.1-update-url.http"), "x-ESP8266-mode",
                           "version")
        r = self.send(data)
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertEqual(r.header("x-version"), "1.1.0")
        self.assertEqual(r.header("x-MD5"), md5(FW_110))

    # ESP32 updater ---------------------------------------------------------
    def test_esp32_master_keyed_by_base_mac(self):
        r = self.send(fixture("esp32-httpupdate-3.x-base-mac.http"))
        self.assert_image(r, GATEWAY)
        # Another BASE-MAC with the same STA-MAC: BASE-MAC decides.
        other = with_header(fixture("esp32-httpupdate-3.x-base-mac.http"), "x-ESP32-BASE-MAC",
                            "24:0A:C4:99:99:99")
        self.assert_not_modified(self.send(other))

    def test_esp32_falls_back_to_sta_mac_never_ap_mac(self):
        # The 2.x updater sends no BASE-MAC: STA-MAC is the identity.
        data = with_path(fixture("esp32-httpupdate-sketch.http"), "/update/GATEWAY")
        data = with_header(data, "x-ESP32-STA-MAC", "24:0A:C4:12:34:56")
        self.assert_image(self.send(data), GATEWAY)
        # Only the (all-zero) AP MAC would match the first GATEWAY rule.
        data = with_header(data, "x-ESP32-STA-MAC", "24:0A:C4:00:00:01")
        data = with_header(data, "x-ESP32-AP-MAC", "00:00:00:00:00:00")
        self.assert_not_modified(self.send(data))

    def test_esp32_without_wifi_device_type_from_the_mac_rule(self):
        self.assert_image(self.send(fixture("esp32-httpupdate-3.x-no-wifi.http")), H2)

    # Tasmota ---------------------------------------------------------------
    def test_tasmota_too_big_gets_its_minimal_image(self):
        self.assert_image(self.send(fixture("tasmota-14-esp8266-upgrade.http")), TAS_MIN)

    def test_tasmota_with_space_gets_the_full_image_under_any_extension(self):
        data = with_header(fixture("tasmota-14-esp8266-upgrade.http"), "x-ESP8266-free-space",
                           "1000000")
        for path in ("/update/SONOFF_BASIC.bin.gz", "/update/SONOFF_BASIC.bin",
                     "/update/SONOFF_BASIC", "/update/SONOFF_BASIC.gz"):
            self.assert_image(self.send(with_path(data, path)), TAS_FULL)

    def test_tasmota_minimal_url_gets_the_minimal_image(self):
        self.assert_image(self.send(fixture("tasmota-14-esp8266-minimal.http")), TAS_MIN)

    def test_tasmota_minimal_firmware_is_never_current(self):
        # Booted from the minimal image (same version as the target), it asks
        # for the full one, which now fits.
        self.assert_image(self.send(fixture("tasmota-14-esp8266-from-minimal.http")), TAS_FULL)
        # Running the very minimal image nofussd sent: that rule's full image.
        data = with_header(fixture("tasmota-14-esp8266-from-minimal.http"),
                           "x-ESP8266-sketch-md5", md5(TAS_MIN))
        self.assert_image(self.send(data), TAS_FULL)

    def test_tasmota_current_gets_304(self):
        data = with_header(fixture("tasmota-14-esp8266-upgrade.http"), "x-ESP8266-version",
                           "14.4.0(release-tasmota)")
        self.assert_not_modified(self.send(data))
        dev = with_header(data, "x-ESP8266-version", "14.4.0(8a3b2c1-tasmota)")
        self.assert_not_modified(self.send(dev))

    def test_tasmota_esp32_safeboot_gets_the_application(self):
        # The safeboot image reports the target's version and its own MD5:
        # neither "current" nor a mismatch; it is sent the application.
        self.assert_image(self.send(fixture("tasmota-14-esp32-safeboot.http")), TAS32)

    # ESPHome ---------------------------------------------------------------
    def manifest(self, name="livingroom", server=None):
        data = fixture("esphome-2025.11-esp8266-manifest.http")
        if name != "livingroom":
            data = with_path(data, "/esphome/%s/manifest.json" % name)
        r = self.send(data, server)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.header("Content-Type"), "application/json")
        return json.loads(r.body)

    def test_esphome_manifest(self):
        m = self.manifest()
        self.assertEqual(m["name"], "livingroom")
        self.assertEqual(m["version"], "1.1.0")
        self.assertEqual(len(m["builds"]), 1)
        b = m["builds"][0]
        self.assertEqual(b["chipFamily"], "ESP8266")
        self.assertEqual(b["ota"]["path"], "/firmware/livingroom-1.1.0.bin")
        self.assertEqual(b["ota"]["md5"], md5(LIVING))
        self.assertRegex(b["ota"]["md5"], "^[0-9a-f]{32}$")
        self.assertEqual(b["ota"]["summary"], 'Fixes "the" lamp')
        self.assertEqual(b["ota"]["release_url"], "https://example.com/r/1.1.0")
        # The device then fetches the path from this server, and checks md5.
        r = self.send(fixture("esphome-2025.11-esp8266-download.http"))
        self.assertEqual(r.status, 200)
        self.assertEqual(md5(r.body), b["ota"]["md5"])

    def test_esphome_chip_family_from_the_esp32_header(self):
        self.assertEqual(self.manifest("kitchen")["builds"][0]["chipFamily"], "ESP32-C3")

    def test_esphome_nothing_for_you(self):
        m = self.manifest("stranger")
        self.assertEqual(m["version"], "")
        families = {b["chipFamily"] for b in m["builds"]}
        self.assertTrue({"ESP8266", "ESP32", "ESP32-C3", "ESP32-S3"} <= families)

    def test_esphome_path_under_the_base(self):
        data = with_path(fixture("esphome-2025.11-esp8266-manifest.http"),
                         "/nofuss/esphome/livingroom/manifest.json")
        r = self.send(data, self.prefixed)
        self.assertEqual(json.loads(r.body)["builds"][0]["ota"]["path"],
                         "/nofuss/firmware/livingroom-1.1.0.bin")

    def test_esphome_version_in_the_url(self):
        """A firmware built with source: .../manifest.json?version=${version}
        tells the version it runs: an older one is offered the target, the
        target's own gets a manifest of that version and no build to fetch
        (ESPHome: "no update", shown as up to date on it), and the version
        is what the rules see (docs/PROTOCOL.md section 5.3)."""
        data = fixture("esphome-2025.11-esp8266-manifest.http")
        m = json.loads(self.send(with_path(
            data, "/esphome/livingroom/manifest.json?version=1.0.0")).body)
        self.assertEqual((m["version"], m["builds"][0]["ota"]["md5"]), ("1.1.0", md5(LIVING)))
        r = self.send(with_path(data, "/esphome/livingroom/manifest.json?version=1.1.0"))
        self.assertEqual(r.status, 200, r.body)
        m = json.loads(r.body)
        self.assertEqual(m["version"], "1.1.0")
        self.assertEqual({(b["ota"]["path"], b["ota"]["md5"]) for b in m["builds"]}, {("", "")})
        # A rule with a version range: SONOFF < 1.1.0.
        m = json.loads(self.send(with_path(data, "/esphome/SONOFF/manifest.json?version=1.0")).body)
        self.assertEqual(m["version"], "1.1.0")
        m = json.loads(self.send(with_path(data, "/esphome/SONOFF/manifest.json?version=1.2")).body)
        self.assertEqual((m["version"], m["builds"][0]["ota"]["path"]), ("1.2", ""))
        # Percent-encoded, as in any query; an empty one is no version.
        m = json.loads(self.send(with_path(
            data, "/esphome/livingroom/manifest.json?version=1.1.0%2Bdev")).body)
        self.assertEqual(m["version"], "1.1.0")
        m = json.loads(self.send(with_path(data, "/esphome/livingroom/manifest.json?version=")).body)
        self.assertEqual(m["version"], "1.1.0")
        # Longer than any version nofuss takes: refused, saying why.
        r = self.send(with_path(data, "/esphome/livingroom/manifest.json?version=" + "9" * 129))
        self.assertEqual(r.status, 400)
        self.assertIn(b"version= is longer than 128 bytes", r.body)

    # Collisions ------------------------------------------------------------
    def test_path_form_device_named_update_stays_a_check(self):
        r = get(self.server.port, "/update/1.0")
        self.assertEqual(r.json()["version"], "2.0")

    def test_header_form_chip_size_holds_back(self):
        r = self.send(fixture("nofuss-client-0.4.0-check.http"))   # CHIPSIZE 1048576
        self.assertEqual(r.body, b"{}")
        self.assert_held("image built for 4096 KiB flash, chip has 1024 KiB")
        h = check_headers("5C:CF:7F:8B:6B:26", "ESPURNA_SONOFF_BASIC", "1.13.5")
        h["X-ESP8266-CHIPSIZE"] = "4194304"
        self.assertEqual(get(self.server.port, "/", h).json()["version"], "1.14.0")
        del h["X-ESP8266-CHIPSIZE"]
        self.assertEqual(get(self.server.port, "/", h).json()["version"], "1.14.0")


def fixture_bytes(data, port):
    return re.sub(rb"\r\nHost: [^\r]*\r\n", b"\r\nHost: 127.0.0.1:%d\r\n" % port, data, 1)


class ReplacedImageTest(ServerTest):
    """An image replaced after the rules were loaded: the manifest never
    carries the old MD5; 503 while the new one is computed, then it."""
    rules = RULES
    files = FILES

    def test_manifest_waits_for_the_new_md5(self):
        self.start()
        new = image("livingroom-1.1.0-rebuilt", 36000)
        tmp = self.data.add_file("firmware/.new", new)
        os.rename(tmp, os.path.join(self.data.public, "firmware", "livingroom-1.1.0.bin"))
        data = fixture("esphome-2025.11-esp8266-manifest.http", self.server.port)
        r, _ = raw_request(self.server.port, data)
        self.assertEqual(r.status, 503)
        self.assertIsNotNone(r.header("Retry-After"))

        def manifest():
            r, _ = raw_request(self.server.port, data)
            return json.loads(r.body) if r.status == 200 else None
        m = wait_until(manifest, timeout=10)
        self.assertIsNotNone(m, "still 503 after 10 s")
        self.assertEqual(m["builds"][0]["ota"]["md5"], md5(new))


class ShadowedTest(ServerTest):
    """A public folder named like a reserved segment takes its place."""
    rules = RULES
    files = dict(FILES, **{"update/SONOFF": b"\xe9from the folder",
                           "esphome/livingroom/manifest.json": b'{"static":1}'})

    def test_folder_wins_with_a_warning(self):
        self.start()
        self.server.wait_for(r"public/update: this folder takes the place of nofussd's /update")
        self.server.wait_for(r"public/esphome: this folder takes the place")
        r, _ = raw_request(self.server.port, fixture("esp8266-httpupdate-3.1-update-url.http",
                                                     self.server.port))
        self.assertEqual((r.status, r.body), (200, b"\xe9from the folder"))
        r, _ = raw_request(self.server.port, fixture("esphome-2025.11-esp8266-manifest.http",
                                                     self.server.port))
        self.assertEqual(r.body, b'{"static":1}')


if __name__ == "__main__":
    unittest.main()
