"""`nofuss fleet --pubkey`: every simulated device of a fleet is a sketch
built with ARDUINO_SIGNING (the POSIX port's signature check, one key loaded
once and shared by all of them). Against the real nofussd: signed images
update the whole fleet; unsigned ones are refused by every device, which
keeps its old firmware and filesystem; a bad key file is a usage error."""
import os
import shutil
import tempfile
import unittest

from test_fleet import DEVICE, FleetTest, run_fleet
from test_sign_cli import OPENSSL, make_keys, read, write
from test_device import nofuss

REFUSED = "image refused by the device's signature check"


@unittest.skipIf(OPENSSL is None, "no openssl command")
class SignedFleetTest(FleetTest):

    @classmethod
    def setUpClass(cls):
        cls.keys = tempfile.mkdtemp(prefix="nofuss-fleet-keys-")
        cls.key = make_keys(cls.keys, (("good", 2048),))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.keys, ignore_errors=True)

    def sign_in_place(self, rel):
        path = os.path.join(self.data.public, rel)
        r = nofuss("sign", "--key", self.key["good"][0], "-o", path, path)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_signed_images_update_the_fleet(self):
        self.sign_in_place("firmware/test-0.1.1.bin")
        self.sign_in_place("firmware/test-0.1.1-fs.bin")
        self.start()
        r = self.fleet("--pubkey", self.key["good"][1], "--until-updated", "--interval", "0.1",
                       "--reboot-delay", "0.05", "-q", n=50)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual((r["updated"], r["failed"]), (50, 0), str(r))
        self.assertEqual(r["firmware_versions"], {"0.1.1": 50})
        self.assertEqual(r["filesystem_versions"], {"0.1.1": 50})

    def test_unsigned_images_refused_everywhere(self):
        self.start()
        r = self.fleet("--pubkey", self.key["good"][1], "--until-updated", "--give-up", "2",
                       "--interval", "0.1", "--reboot-delay", "0.05", "-q", n=50)
        self.assertEqual(r.rc, 1, str(r))
        self.assertEqual((r["failed"], r["updated"], r["updates_installed"]), (50, 0, 0), str(r))
        self.assertEqual(r["failed_by_error"], {REFUSED: 50})
        self.assertEqual(r["firmware_versions"], {"0.1.0": 50})
        self.assertEqual(r["filesystem_versions"], {"0.1.0": 50})
        print("\nnofuss fleet --pubkey: %d of 50 devices refused the unsigned images, "
              "%d installs" % (r["failed"], r["updates_installed"]))

    def test_bad_key_file_is_a_usage_error(self):
        junk = write(os.path.join(self.tmp, "junk.pem"), b"not a key\n")
        r = run_fleet("http://127.0.0.1:9/", "--pubkey", junk, n=2)
        self.assertEqual(r.rc, 2, str(r))
        self.assertRegex(r.err, r"--pubkey: .*junk\.pem")


if __name__ == "__main__":
    unittest.main()
