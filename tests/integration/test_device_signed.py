"""Signed images on the simulated device: the real nofussd serves signed,
altered and wrongly signed images to `nofuss device --pubkey` (the POSIX
port's nf_port_flash_verify, ports/posix/verify.c).

A device with a key refuses every image its key did not sign as it is:
unsigned, truncated, re-signed with another key, signed with another key
size or a 1024-bit key, any byte of the payload, the signature or the length
field altered, a firmware or a filesystem. Each refusal says why on the
console, reports FIRMWARE_UPDATE_ERROR or FILESYSTEM_UPDATE_ERROR (error 15),
leaves every file of the flash directory as it was (0 commits) and the old
firmware booting. The right image goes through; a device without a key
takes a signed image as unsigned firmware does, trailer and all. An
ArduinoOTA push (`nofuss ota-send`) into a device with a key is checked the
same way.
"""
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from broker import free_udp_port

from test_device import DEVICE, Device, DeviceTest, flash_digest, flash_view, image_bytes
from test_device import NOFUSS, RUN_TIMEOUT, nofuss, provision
from test_sign_cli import OPENSSL, make_keys, openssl_signed, read, write

REFUSED_RX = re.compile(r"^\[nofuss\] signature: refused: (.+)$")
VERIFIED_RX = re.compile(r"^\[nofuss\] signature: verified \(RSA-2048, (\d+) bytes signed\)$")
OLD_BOOT = ("a", "0.1.0", "0.1.0", DEVICE, "normal")


@unittest.skipIf(OPENSSL is None, "no openssl command")
class SignedDeviceTest(DeviceTest):

    @classmethod
    def setUpClass(cls):
        cls.keys = tempfile.mkdtemp(prefix="nofuss-dev-keys-")
        cls.key = make_keys(cls.keys, (("good", 2048), ("other", 2048), ("big", 3072)),
                            small=("small",))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.keys, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.fw = write(os.path.join(self.tmp, "fw.bin"), image_bytes(self.tmp, "0.1.1"))
        self.fs = write(os.path.join(self.tmp, "fs.bin"), image_bytes(self.tmp, "0.1.1", "--fs"))
        self.fw_signed = self.sign(self.fw)
        self.fs_signed = self.sign(self.fs)
        self.flash = provision(os.path.join(self.tmp, "flash"))
        self.start()
        self.device = Device(self.flash, self.url())

    def sign(self, path, key="good"):
        out = path + "." + key
        r = nofuss("sign", "--key", self.key[key][0], "-o", out, path)
        self.assertEqual(r.returncode, 0, r.stderr)
        return read(out)

    def offer(self, name, fw, fs=None):
        """Rules offering 0.1.1 as these bytes (each under its own name)."""
        target = {"version": "0.1.1", "firmware": "/firmware/%s.bin" % name}
        self.data.add_file("firmware/%s.bin" % name, fw)
        if fs is not None:
            target["spiffs"] = "/firmware/%s-fs.bin" % name
            self.data.add_file("firmware/%s-fs.bin" % name, fs)
        self.set_rules([{"origin": {"device": DEVICE, "max": "0.1.0"}, "target": target}])

    def bad_images(self):
        """(name, firmware, filesystem or None, reason regex) of each image
        the device must refuse; the filesystem is tried first when offered."""
        fw, signed = read(self.fw), self.fw_signed
        sig_at, len_at = len(fw), len(signed) - 4

        def flip(data, at):
            b = bytearray(data)
            b[at] ^= 0x01
            return bytes(b)

        return [
            ("unsigned", fw, None, r"no signature trailer"),
            ("cut-1", signed[:-1], None, r"."),
            ("cut-in-signature", signed[:sig_at + 100], None, r"."),
            ("resigned-other-key", self.sign(self.fw, "other"), None, r"does not verify"),
            ("signed-3072", self.sign(self.fw, "big"), None, r"another key size"),
            ("signed-1024", openssl_signed(self.key["small"][0], self.fw, self.tmp), None,
             r"1024-bit key.*minimum key size is 2048"),
            ("payload-header", flip(signed, 100), None, r"does not verify"),
            ("payload-middle", flip(signed, len(fw) // 2), None, r"does not verify"),
            ("payload-last", flip(signed, len(fw) - 1), None, r"does not verify"),
            ("signature-first", flip(signed, sig_at), None, r"does not verify"),
            ("signature-last", flip(signed, len_at - 1), None, r"does not verify"),
            ("length-field", flip(signed, len_at + 1), None, r"another key size|trailer"),
            ("fs-unsigned", signed, read(self.fs), r"no signature trailer"),
            ("fs-payload", signed, flip(self.fs_signed, 4000), r"does not verify"),
        ]

    def test_refuses_every_bad_image(self):
        refused = commits = 0
        cases = self.bad_images()
        before = flash_digest(self.flash)
        for name, fw, fs, why in cases:
            self.offer(name, fw, fs)
            r = self.device.run("--pubkey", self.key["good"][1], "--once")
            stage = "FIRMWARE" if fs is None else "FILESYSTEM"
            self.assertEqual(r.rc, 1, "%s\n%s" % (name, r))
            self.assertEqual(r.messages(), ["START", "UPDATING", stage + "_UPDATE_ERROR", "END"],
                             "%s\n%s" % (name, r))
            self.assertIn("[nofuss] %s_UPDATE_ERROR: image refused by the device's signature "
                          "check (error 15)" % stage, r.lines, name)
            reasons = [REFUSED_RX.match(l).group(1) for l in r.lines if REFUSED_RX.match(l)]
            self.assertEqual(len(reasons), 1, "%s\n%s" % (name, r))
            self.assertRegex(reasons[0], why, name)
            self.assertEqual(r.boots, [OLD_BOOT], name)
            refused += 1
            if flash_digest(self.flash) != before:
                commits += 1
        # The old firmware still boots, on its own slot, after all of them.
        r = self.device.run("--max-checks", "0", "--pubkey", self.key["good"][1])
        self.assertEqual((r.rc, r.boots), (0, [OLD_BOOT]), str(r))
        view = flash_view(self.flash)
        self.assertEqual((view["state"]["active"], view["state"]["trial"]), ("a", "-"))
        self.assertNotIn("slot-b.bin", os.listdir(self.flash))
        self.assertEqual(view["new"], [])
        print("\nnofuss device --pubkey: %d of %d rejected, %d commits"
              % (refused, len(cases), commits))
        self.assertEqual((refused, commits), (len(cases), 0))

        # The right images then go through, and verify at every step.
        self.offer("good", self.fw_signed, self.fs_signed)
        r = self.device.run("--pubkey", self.key["good"][1], "--until-up-to-date",
                            "--max-checks", "3")
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(r.messages(), ["START", "UPDATING", "FILESYSTEM_UPDATED",
                                        "FIRMWARE_UPDATED", "RESET", "reboot",
                                        "START", "UPTODATE", "END"], str(r))
        sizes = [int(VERIFIED_RX.match(l).group(1)) for l in r.lines if VERIFIED_RX.match(l)]
        self.assertEqual(sizes, [os.path.getsize(self.fs), os.path.getsize(self.fw)])
        self.assertEqual(r.boots[-1], ("b", "0.1.1", "0.1.1", DEVICE, "trial"))
        self.assertIn("[boot] slot b confirmed", r.lines)

    def test_without_key_takes_signed_images(self):
        """Firmware built without a key writes the trailer too and boots the
        image before it (an uncompressed image's trailer lies after its end)."""
        self.offer("good", self.fw_signed, self.fs_signed)
        r = self.device.run("--until-up-to-date", "--max-checks", "3")
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(r.boots[-1], ("b", "0.1.1", "0.1.1", DEVICE, "trial"))
        self.assertFalse([l for l in r.lines if "signature" in l], str(r))
        self.assertEqual(os.path.getsize(os.path.join(self.flash, "slot-b.bin")),
                         os.path.getsize(self.fw) + 260)
        view = flash_view(self.flash)
        self.assertEqual(view["slot-b.bin"][:2], ("firmware", "0.1.1"))
        self.assertEqual(view["fs.bin"][:2], ("filesystem", "0.1.1"))
        r = nofuss("info", os.path.join(self.flash, "slot-b.bin"))
        self.assertRegex(r.stdout, r"slot-b.bin: firmware version=0\.1\.1 device=TEST "
                                   r"size=%d " % os.path.getsize(self.fw))

    def wait_console(self, proc, console, text, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in read(console).decode():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        self.fail("no %r on the console (exit %s):\n%s" % (text, proc.poll(),
                                                          read(console).decode()))

    def test_ota_push_is_checked_too(self):
        """The ArduinoOTA receiver commits through the port without asking
        nf_port_flash_verify: the port checks at finish."""
        ip = "127.0.0.42"
        port = free_udp_port(ip)
        console = os.path.join(self.tmp, "console.log")
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOFUSS_SIM_RESUME", "NOFUSS_POWER_CUT_AT")}
        with open(console, "w") as out:
            proc = subprocess.Popen(
                [NOFUSS, "device", "--flash", self.flash, "--server", self.url("/none/"),
                 "--interval", "3600", "--ota", "%s:%d" % (ip, port), "--ota-pause", "0.05",
                 "--pubkey", self.key["good"][1]],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        try:
            self.wait_console(proc, console, "[ota] listening on")
            unsigned = os.path.join(self.tmp, "unsigned.bin")
            signed = write(os.path.join(self.tmp, "signed.bin"), self.fw_signed)
            shutil.copy(self.fw, unsigned)
            for image, rc in ((unsigned, 8), (signed, 0)):  # 8: the device answered ERROR
                r = subprocess.run([NOFUSS, "ota-send", "-q", "--ip", ip, "--port", str(port),
                                    "--timeout", "5", image], capture_output=True, text=True,
                                   timeout=RUN_TIMEOUT)
                self.assertEqual(r.returncode, rc, r.stdout + r.stderr)
            self.wait_console(proc, console, "[boot] slot b confirmed")
        finally:
            proc.kill()
            proc.wait(timeout=10)
        lines = read(console).decode().splitlines()
        self.assertEqual([l for l in lines if "signature" in l],
                         ["[nofuss] signature: refused: no signature trailer (its last 4 bytes "
                          "read as length %d): an unsigned image, or its end is missing"
                          % int.from_bytes(read(self.fw)[-4:], "little"),
                          "[nofuss] signature: verified (RSA-2048, %d bytes signed)"
                          % os.path.getsize(self.fw)])
        self.assertIn("[boot] slot=b version=0.1.1 fs=0.1.0 device=TEST mode=trial", lines)

    def test_bad_key_is_bad_usage(self):
        before = flash_digest(self.flash)
        for key, why in ((os.path.join(self.tmp, "none.pem"), r"none\.pem"),
                         (self.fw, r"key"),
                         (self.key["small"][0], r"1024.*minimum")):
            r = self.device.run("--pubkey", key, "--once")
            self.assertEqual(r.rc, 2, str(r))
            self.assertRegex(r.err, r"^nofuss device: --pubkey: .*" + why)
            self.assertEqual(r.boots, [])
        self.assertEqual(flash_digest(self.flash), before)


if __name__ == "__main__":
    unittest.main()
