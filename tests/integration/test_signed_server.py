"""nofussd with a public key (pubkey = ..., docs/SIGNING.md): the real
nofussd, a key pair made by `nofuss keygen`, images signed by `nofuss sign`.

A rule naming an image that does not verify with the key (unsigned, signed
by another key, truncated, tampered, a 1024-bit signer, an empty file) is
skipped with a warning naming the rule, the image and why; a device it
matched gets the next matching rule, or "{}". A rule naming a signed image
is answered, and the image is served whole with x-MD5 over the bytes sent.
Each image is verified once per file identity: a reload with nothing
changed verifies nothing, and an image replaced by a tampered copy is
verified (and refused) again at the next SIGHUP. Every altered, cut or
wrongly signed copy `nofuss verify` refuses is refused by the server too.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import NOFUSSD, DataDir, ServerTest, check_headers, esp_image, get, md5
from test_device import nofuss
import test_sign_cli
from test_sign_cli import OPENSSL, make_keys, openssl_signed, read, write

MAC = "5C:CF:7F:8B:6B:26"
IMAGE_SIZE = 200 * 1024
# name -> (key that signs it or None, how the signed bytes are spoiled, why regex)
BAD = {
    "unsigned": (None, None, r"no signature trailer"),
    "other": ("other", None, r"does not verify.*another key"),
    "truncated": ("good", lambda b: b[:-100], r"no signature trailer|its end is missing"),
    "tampered": ("good", lambda b: b[:1000] + bytes([b[1000] ^ 1]) + b[1001:],
                 r"does not verify: tampered"),
    "small": ("small", None, r"1024-bit key.*minimum key size is 2048"),
}


def rule(device, version, image):
    return {"origin": {"device": device, "min": "0.0.0", "max": "1.0.0"},
            "target": {"version": version, "firmware": "/" + image}}


def check(port, device):
    r = get(port, "/", check_headers(MAC, device, "0.5.0"))
    assert r.status == 200, r.status
    return r.json()


@unittest.skipIf(OPENSSL is None, "no openssl command")
class SignedServerTest(ServerTest):

    @classmethod
    def setUpClass(cls):
        cls.keys = tempfile.mkdtemp(prefix="nofuss-srv-keys-")
        cls.key = make_keys(cls.keys, (("good", 2048), ("other", 2048)), small=("small",))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.keys, ignore_errors=True)

    def signed(self, tag, key="good"):
        """The bytes of an image signed by key with `nofuss sign`."""
        src = write(os.path.join(self.data.path, tag + ".raw"), esp_image(tag, IMAGE_SIZE))
        if key is None:
            return read(src)
        if key == "small":  # nofuss sign refuses keys under 2048 bits: openssl signs
            return openssl_signed(self.key[key][0], src, self.data.path)
        out = src + ".signed"
        r = nofuss("sign", "--key", self.key[key][0], "-o", out, src)
        self.assertEqual(r.returncode, 0, r.stderr)
        return read(out)

    def setUp(self):
        super().setUp()
        self.images = {"good.bin": self.signed("good")}
        for name, (key, spoil, _) in BAD.items():
            data = self.signed(name, key)
            self.images[name + ".bin"] = spoil(data) if spoil else data
        self.images["empty.bin"] = b""
        for name, data in self.images.items():
            self.data.add_file(name, data)
        rules = [rule("GOOD", "2.0.0", "good.bin")]
        rules += [rule(name.upper(), "2.0.0", name + ".bin") for name in BAD]
        rules.append(rule("EMPTY", "2.0.0", "empty.bin"))
        # A skipped rule hands the device on to the next one that matches.
        rules.append(rule("TAMPERED", "1.5.0", "good.bin"))
        self.data.write_rules(rules)

    def test_bad_images_skipped_good_served(self):
        s = self.start("--pubkey", self.key["good"][1])
        err = s.stderr()
        self.assertIn("rules may only name images signed for the 2048-bit key", err)
        self.assertEqual(check(s.port, "GOOD")["version"], "2.0.0")
        refused = 0
        for number, name in enumerate(list(BAD) + ["empty"], start=2):
            why = BAD[name][2] if name in BAD else r"0 bytes: too short to be a signed image"
            line = re.search(r"rule %d: target\.firmware: (\S+): does not verify with the public "
                             r"key, rule skipped: (.*)" % number, err)
            self.assertIsNotNone(line, "%s: no warning\n%s" % (name, err))
            self.assertTrue(line.group(1).endswith("/public/%s.bin" % name), line.group(1))
            self.assertRegex(line.group(2), why, name)
            answer = check(s.port, name.upper())
            if name == "tampered":
                self.assertEqual(answer["version"], "1.5.0")  # the next rule
            else:
                self.assertEqual(answer, {}, name)
            refused += 1
        self.assertIn("6 of 8 rules skipped: they name images that do not verify", err)
        print("\nnofussd --pubkey: %d of %d bad images refused (rules skipped), "
              "the signed one served" % (refused, len(BAD) + 1))
        # The signed image is served as any other: whole, x-MD5 over the bytes sent.
        r = get(s.port, "/good.bin", {"User-Agent": "ESP8266-http-Update",
                                      "x-ESP8266-mode": "sketch"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.images["good.bin"])
        self.assertEqual(r.header("x-MD5"), md5(self.images["good.bin"]))

    def reload_counts(self, s):
        """SIGHUP, then (verified, unchanged, skipped) from the reload's line."""
        rx = (r"reloaded .*signatures: (\d+) verified, (\d+) unchanged, "
              r"(\d+) rules skipped")
        mark = s.line_count()
        s.signal(signal.SIGHUP)
        return re.search(rx, s.wait_for(rx, start=mark)).groups()

    def test_verified_once_per_image(self):
        s = self.start("--pubkey", self.key["good"][1], "-v")
        err = s.stderr()
        # Seven distinct files, verified once each (good.bin is named twice).
        self.assertEqual(len(re.findall(r"good\.bin: hashed, signature verified", err)), 1)
        self.assertEqual(len(re.findall(r": hashed, signature refused", err)), 6)
        self.assertEqual(self.reload_counts(s), ("0", "7", "6"))
        # The signed image replaced by a tampered copy: verified again, refused.
        data = self.images["good.bin"]
        tmp = os.path.join(self.data.public, ".good.tmp")
        write(tmp, data[:500] + bytes([data[500] ^ 0x80]) + data[501:])
        os.rename(tmp, os.path.join(self.data.public, "good.bin"))
        self.assertEqual(check(s.port, "GOOD")["version"], "2.0.0")  # until the reload
        self.assertEqual(self.reload_counts(s), ("1", "6", "8"))
        self.assertRegex(s.stderr(), r"rule 1: target\.firmware: \S+/good\.bin: does not "
                                     r"verify with the public key, rule skipped: .*tampered")
        self.assertEqual(check(s.port, "GOOD"), {})
        self.assertEqual(check(s.port, "TAMPERED"), {})

    def test_every_alteration_refused(self):
        """Every altered, cut or wrongly signed copy that `nofuss verify`
        refuses (test_sign_cli.py), each named by a rule of its own: every
        such rule is skipped, the one naming the intact image answers."""
        signed = self.images["good.bin"]
        copies = test_sign_cli.SignCliTest.altered_copies(None, signed, len(signed) - 260)
        rules = [rule("GOOD", "2.0.0", "good.bin")]
        for i, (name, data, _why) in enumerate(copies):
            self.data.add_file("alt/%s.bin" % name, data)
            rules.append(rule("ALT%d" % i, "2.0.0", "alt/%s.bin" % name))
        self.data.write_rules(rules)
        s = self.start("--pubkey", self.key["good"][1])
        answered = [i for i in range(len(copies)) if check(s.port, "ALT%d" % i) != {}]
        self.assertEqual(answered, [])
        self.assertEqual(check(s.port, "GOOD")["version"], "2.0.0")
        self.assertIn("%d of %d rules skipped" % (len(copies), len(rules)), s.stderr())
        print("\nnofussd --pubkey: %d of %d altered, cut or wrongly signed images refused "
              "(their rules skipped), 0 served" % (len(copies), len(copies)))

    def test_without_key_everything_served(self):
        s = self.start()
        self.assertEqual(check(s.port, "UNSIGNED")["version"], "2.0.0")
        self.assertNotIn("signature", s.stderr())


class PubkeySettingTest(unittest.TestCase):
    """The key is checked at start and by --check, from the command line
    and from the configuration file."""

    def setUp(self):
        self.data = DataDir([rule("A", "2.0.0", "a.bin")], {"a.bin": esp_image("a", 4096)})

    def tearDown(self):
        self.data.cleanup()

    def run_nofussd(self, *args):
        return subprocess.run([NOFUSSD, "-d", self.data.path] + list(args), capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)

    def test_bad_keys_refused(self):
        junk = write(os.path.join(self.data.path, "junk.pem"), b"not a key\n")
        for path, why in ((os.path.join(self.data.path, "none.pem"), "No such file"),
                          (junk, "not a usable PEM key|PEM")):
            for extra in (("--check",), ("-p", "0", "-l", "127.0.0.1")):
                r = self.run_nofussd("--pubkey", path, *extra)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertRegex(r.stderr, r"error: pubkey: .*(%s)" % why)

    @unittest.skipIf(OPENSSL is None, "no openssl command")
    def test_check_counts_skipped_rules(self):
        keys = make_keys(self.data.path, (("k", 2048),))
        conf = write(os.path.join(self.data.path, "nofussd.conf"),
                     ("[nofussd]\npubkey = %s\n" % keys["k"][1]).encode())
        r = self.run_nofussd("-c", conf, "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1 rules, ok; 1 skipped: their images do not verify", r.stdout)
        self.assertRegex(r.stderr, r"rule 1: target\.firmware: \S+/a\.bin: does not verify")


if __name__ == "__main__":
    unittest.main()
