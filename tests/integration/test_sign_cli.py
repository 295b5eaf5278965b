"""`nofuss keygen`, `pubkey`, `sign` and `verify` (tools/sign/) run as a user
runs them, checked against the real `openssl` command and a real C compiler:

- `nofuss sign` writes exactly the image + `openssl dgst -sha256 -sign` +
  le32(length) construction, byte for byte, for 2048- and 3072-bit keys;
- `nofuss verify` refuses every altered region of a signed image (payload,
  signature, length field), truncations, another key's signature, other key
  sizes and a 1024-bit signer when 2048 bits are required: counted, printed;
- `nofuss pubkey --header` is the key's PEM as a C array that compiles;
- the ESP8266 core's traps are warned about, and --flash-mode / --pad fix them;
- keys are never overwritten unless asked, and every exit status is the
  documented one.
"""
import gzip
import os
import random
import re
import shutil
import stat
import struct
import subprocess
import tempfile
import unittest

from test_device import mkimage, nofuss

OPENSSL = shutil.which("openssl")
CC = shutil.which("cc") or shutil.which("gcc")
EXIT_FAILED, EXIT_USAGE, EXIT_KEY = 1, 2, 3
VERIFIED_RX = re.compile(r"^(.*): verified: RSA-(\d+) signature over (\d+) bytes$")
REFUSED_RX = re.compile(r"^(.*): refused: (.+)$")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def openssl_signed(key, image_path, tmp):
    """The core's signing tool's construction, with the real openssl command."""
    sig_path = os.path.join(tmp, "ref.sig")
    subprocess.run([OPENSSL, "dgst", "-sha256", "-sign", key, "-out", sig_path, image_path],
                   check=True, capture_output=True, timeout=60)
    sig = read(sig_path)
    return read(image_path) + sig + struct.pack("<I", len(sig))


def make_keys(folder, sizes, small=()):
    """{name: (private, public)} for each (name, bits) of sizes, made by
    nofuss keygen in folder, and for each name of small a 1024-bit pair made
    by openssl (nofuss refuses to make one)."""
    keys = {}
    for name, bits in sizes:
        priv = os.path.join(folder, name + ".pem")
        pub = os.path.join(folder, name + ".pub.pem")
        r = nofuss("keygen", "--bits", bits, priv, pub)
        assert r.returncode == 0, r.stderr
        keys[name] = (priv, pub)
    for name in small:
        priv = os.path.join(folder, name + ".pem")
        pub = os.path.join(folder, name + ".pub.pem")
        subprocess.run([OPENSSL, "genpkey", "-quiet", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:1024", "-out", priv], check=True, timeout=60)
        subprocess.run([OPENSSL, "pkey", "-in", priv, "-pubout", "-out", pub], check=True,
                       timeout=60)
        keys[name] = (priv, pub)
    return keys


@unittest.skipIf(OPENSSL is None, "no openssl command")
class SignCliTest(unittest.TestCase):
    """Keys made once for the class: by nofuss keygen (2048, another 2048,
    3072) and by openssl (1024 bits, which nofuss refuses to make)."""

    @classmethod
    def setUpClass(cls):
        cls.keys = tempfile.mkdtemp(prefix="nofuss-sign-keys-")
        cls.key = make_keys(cls.keys, (("a2048", 2048), ("b2048", 2048), ("c3072", 3072)),
                            small=("d1024",))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.keys, ignore_errors=True)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nofuss-sign-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def sign(self, key, src, dst, *extra, rc=0):
        r = nofuss("sign", "--key", self.key[key][0], "-o", dst, *(list(extra) + [src]))
        self.assertEqual(r.returncode, rc, r.stdout + r.stderr)
        return r

    def verify(self, key, *files, extra=()):
        """{file: (True, bits, n) or (False, reason)} and the exit status."""
        r = nofuss("verify", "--pubkey", self.key[key][1], *(list(extra) + list(files)))
        out = {}
        for line in r.stdout.splitlines():
            m = VERIFIED_RX.match(line)
            if m:
                out[m.group(1)] = (True, int(m.group(2)), int(m.group(3)))
                continue
            m = REFUSED_RX.match(line)
            self.assertIsNotNone(m, line)
            out[m.group(1)] = (False, m.group(2))
        self.assertEqual(sorted(out), sorted(files), r.stdout + r.stderr)
        return out, r.returncode

    # ---- the construction, byte for byte ----

    def test_sign_equals_openssl_construction(self):
        images = {
            "fw.bin": mkimage(self.path("fw.bin"), "0.1.1", size="64K"),
            "fs.bin": mkimage(self.path("fs.bin"), "0.1.1", "--fs", size="32K"),
            "odd.bin": write(self.path("odd.bin"),
                             bytes([0xE9, 1, 2, 0x20]) + random.Random(7).randbytes(1001)),
        }
        compared = 0
        for key, sig_len in (("a2048", 256), ("c3072", 384)):
            for name in images:
                src, dst = self.path(name), self.path(name + "." + key)
                r = self.sign(key, src, dst)
                self.assertIn("%s: signed %d bytes with RSA-%s (%d-byte signature)"
                              % (dst, os.path.getsize(src), key[1:], sig_len), r.stdout)
                mine = read(dst)
                self.assertEqual(mine, openssl_signed(self.key[key][0], src, self.tmp),
                                 "%s with %s" % (name, key))
                self.assertEqual(mine[-4:], struct.pack("<I", sig_len))
                compared += 1
        print("\nnofuss sign == openssl dgst -sha256 -sign construction: %d of %d images "
              "(2048 and 3072 bits)" % (compared, compared))

    # ---- what verify refuses ----

    def altered_copies(self, signed, image_len):
        """(name, bytes, reason regex) of every altered copy of signed."""
        sig_at, len_at = image_len, len(signed) - 4
        out = []

        def flip(name, at, mask=0x01):
            b = bytearray(signed)
            b[at] ^= mask
            return (name, bytes(b))

        for at in sorted({0, 1, 2, 3, 127, 128} | set(range(0, image_len, 997)) |
                         {image_len - 1}):
            out.append(flip("payload-%d" % at, at) + (r"does not verify",))
        for at in range(sig_at, len_at):
            out.append(flip("signature-%d" % (at - sig_at), at) + (r"does not verify",))
        for at in range(len_at, len(signed)):
            for how, mask in (("flip", 0x01), ("high", 0x80), ("all", 0xFF)):
                out.append(flip("length-%d-%s" % (at - len_at, how), at, mask) +
                           (r"trailer|another key size|minimum key size|truncated",))
        for cut in (1, 2, 3, 4, 5, 100, 256, 259, 260, 261, len(signed) // 2,
                    len(signed) - 3, len(signed)):
            out.append(("cut-%d" % cut, signed[:len(signed) - cut],
                        r"trailer|truncated|does not verify|too short"))
        for lost in (1, 4, 128):
            out.append(("head-lost-%d" % lost, signed[lost:], r"does not verify"))
        out.append(("appended", signed + b"\0", r"trailer|minimum key size"))
        return out

    def test_verify_refuses_every_alteration(self):
        src = self.path("fw.bin")
        image = mkimage(src, "0.1.1", size="16K")
        signed_path = self.path("fw.signed")
        self.sign("a2048", src, signed_path)
        signed = read(signed_path)
        cases = self.altered_copies(signed, len(image))
        # Signed, whole and unaltered, by the wrong signers.
        for key, why in (("b2048", r"does not verify with this 2048-bit key"),
                         ("c3072", r"384-byte signature.*another key size"),
                         ("d1024", r"1024-bit key.*minimum key size is 2048")):
            cases.append(("signed-by-" + key, openssl_signed(self.key[key][0], src, self.tmp),
                          why))
        cases.append(("unsigned", image, r"no signature trailer"))
        files = {}
        for name, data, why in cases:
            files[write(self.path(name), data)] = (name, why)
        good = self.path("fw.signed")
        result, rc = self.verify("a2048", good, *files)
        self.assertEqual(rc, EXIT_FAILED)
        self.assertEqual(result[good], (True, 2048, len(image)))
        refused = 0
        for path, (name, why) in files.items():
            verdict = result[path]
            self.assertFalse(verdict[0], "%s was accepted" % name)
            self.assertRegex(verdict[1], why, name)
            refused += 1
        self.assertEqual(refused, len(cases))
        print("\nnofuss verify: %d of %d altered, cut or wrongly signed images refused, "
              "0 accepted" % (refused, len(cases)))
        # Alone, the good one passes: exit 0.
        self.assertEqual(self.verify("a2048", good)[1], 0)

    def test_min_bits(self):
        src = self.path("fw.bin")
        mkimage(src, "0.1.1", size="16K")
        small = write(self.path("small.signed"),
                      openssl_signed(self.key["d1024"][0], src, self.tmp))
        # A 1024-bit verifying key is itself refused by default: exit 3.
        r = nofuss("verify", "--pubkey", self.key["d1024"][1], small)
        self.assertEqual(r.returncode, EXIT_KEY, r.stderr)
        self.assertRegex(r.stderr, r"^nofuss verify: .*")
        # Allowed with --min-bits 1024, it verifies what it signed.
        result, rc = self.verify("d1024", small, extra=("--min-bits", "1024"))
        self.assertEqual((rc, result[small]), (0, (True, 1024, 16384)))
        # And a 2048-bit key asked for 4096 is unusable.
        r = nofuss("verify", "--pubkey", self.key["a2048"][1], "--min-bits", "4096", small)
        self.assertEqual(r.returncode, EXIT_KEY, r.stderr)
        for bad in ("512", "8192", "x"):
            r = nofuss("verify", "--pubkey", self.key["a2048"][1], "--min-bits", bad, small)
            self.assertEqual(r.returncode, EXIT_USAGE, r.stderr)

    # ---- the public key a sketch embeds ----

    @unittest.skipIf(CC is None, "no C compiler")
    def test_header_compiles_and_holds_the_pem(self):
        pem = read(self.key["a2048"][1])
        r = nofuss("pubkey", self.key["a2048"][0])  # from the private key file
        self.assertEqual((r.returncode, r.stdout.encode()), (0, pem))
        header = self.path("Updater_Signing.h")
        r = nofuss("pubkey", "--header", "-o", header, self.key["a2048"][1])
        self.assertEqual(r.returncode, 0, r.stderr)
        text = read(header).decode()
        self.assertTrue(text.startswith("#include <pgmspace.h>\n#define ARDUINO_SIGNING 1\n"
                                        "static const char signing_pubkey[] PROGMEM = {\n"))
        self.assertTrue(text.endswith("\n};\n"))
        values = bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", text))
        self.assertEqual(values, pem)  # the PEM's bytes, no NUL added
        # The same from stdout and from the private key.
        r = nofuss("pubkey", "--header", self.key["a2048"][0])
        self.assertEqual(r.stdout, text)
        # It compiles where <pgmspace.h> defines PROGMEM, as the core's does.
        inc = self.path("include")
        os.makedirs(inc)
        write(os.path.join(inc, "pgmspace.h"), b"#define PROGMEM\n")
        src = write(self.path("sketch.c"),
                    b'#include <stddef.h>\n#include "Updater_Signing.h"\n'
                    b"size_t key_len(void);\nconst char *key(void);\n"
                    b"size_t key_len(void) { return sizeof signing_pubkey; }\n"
                    b"const char *key(void) { return signing_pubkey; }\n")
        r = subprocess.run([CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", inc, "-I",
                            self.tmp, "-c", src, "-o", self.path("sketch.o")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.getsize(self.path("sketch.o")) > len(pem))

    # ---- the ESP8266 core's traps ----

    def test_flash_mode_warnings(self):
        src = self.path("fw.bin")
        image = mkimage(src, "0.1.1", "--flash-mode", "dio", size="16K")
        r = self.sign("a2048", src, self.path("plain"))
        self.assertRegex(r.stderr, r"nofuss sign: warning: signed with flash mode dio \(byte 2")
        # --check-flash-mode: a warning when the devices run another mode, byte 2 kept.
        r = self.sign("a2048", src, self.path("checked"), "--check-flash-mode", "qio")
        self.assertRegex(r.stderr, r"warning: byte 2 of the app image says flash mode dio but "
                                   r"the devices run qio")
        self.assertEqual(read(self.path("checked"))[2], 2)
        r = self.sign("a2048", src, self.path("same"), "--check-flash-mode", "dio")
        self.assertNotIn("flash mode", r.stderr)
        # --flash-mode: byte 2 set before signing, and the signature covers it.
        r = self.sign("a2048", src, self.path("set"), "--flash-mode", "qio")
        self.assertRegex(r.stderr, r"warning: flash mode byte \(byte 2\) set from dio \(0x02\) "
                                   r"to qio")
        out = read(self.path("set"))
        self.assertEqual(out[:len(image)], image[:2] + b"\0" + image[3:])
        self.assertEqual(out, openssl_signed(self.key["a2048"][0],
                                             write(self.path("qio.bin"), out[:len(image)]),
                                             self.tmp))
        self.assertEqual(self.verify("a2048", self.path("set"))[1], 0)
        for bad in (("--flash-mode", "fast"), ("--flash-mode", "qio", "--check-flash-mode",
                                                "qio")):
            self.sign("a2048", src, self.path("x"), *bad, rc=EXIT_USAGE)
        self.assertFalse(os.path.exists(self.path("x")))

    def test_gzip_warnings_and_pad(self):
        raw = random.Random(3).randbytes(5000)
        gz = gzip.compress(raw, mtime=0)
        while len(gz) % 4 == 0:  # an unaligned one, as three gzip files in four are
            raw += b"x"
            gz = gzip.compress(raw, mtime=0)
        src = write(self.path("fw.bin.gz"), gz)
        r = self.sign("a2048", src, self.path("plain"))
        self.assertRegex(r.stderr, r"warning: the image is %d bytes, not a multiple of 4: "
                                   r"released ESP8266 cores" % len(gz))
        self.assertRegex(r.stderr, r"warning: send this signed gzip image only to devices "
                                   r"whose firmware verifies signatures")
        r = self.sign("a2048", src, self.path("padded"), "--pad")
        self.assertRegex(r.stderr, r"warning: gzip header comment grown by [123] byte")
        self.assertNotIn("not a multiple of 4", r.stderr)
        payload = read(self.path("padded"))[:-260]
        self.assertEqual(len(payload) % 4, 0)
        self.assertEqual(gzip.decompress(payload), raw)  # still the same firmware
        self.assertEqual(self.verify("a2048", self.path("padded"))[1], 0)

    def test_other_images_and_signing_twice(self):
        fs = self.path("fs.bin")
        mkimage(fs, "0.1.1", "--fs", size="8K")
        r = self.sign("a2048", fs, self.path("fs.signed"))
        self.assertRegex(r.stderr, r"warning: the image starts with neither 0xE9")
        # Signed already: refused, unless forced (with a warning).
        r = self.sign("a2048", self.path("fs.signed"), self.path("twice"), rc=EXIT_FAILED)
        self.assertRegex(r.stderr, r"already ends with a 256-byte signature.*\(give --force\)")
        self.assertFalse(os.path.exists(self.path("twice")))
        r = self.sign("a2048", self.path("fs.signed"), self.path("twice"), "--force")
        self.assertRegex(r.stderr, r"warning: the input already ended with a signature trailer")
        # In place: the input may be the output.
        self.sign("a2048", fs, fs)
        self.assertEqual(self.verify("a2048", fs)[1], 0)

    # ---- keys and exit statuses ----

    def test_keygen(self):
        priv, pub = self.path("k.pem"), self.path("k.pub.pem")
        r = nofuss("keygen", priv, pub)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(priv).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(pub).st_mode), 0o644)
        self.assertTrue(read(pub).startswith(b"-----BEGIN PUBLIC KEY-----\n"))
        before = read(priv), read(pub)
        r = nofuss("keygen", priv, pub)
        self.assertEqual(r.returncode, EXIT_FAILED)
        self.assertRegex(r.stderr, r"exists: not overwritten \(give --force\)")
        self.assertEqual((read(priv), read(pub)), before)
        r = nofuss("keygen", "--force", priv, pub)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotEqual(read(priv), before[0])
        # The private key alone; the public half later, equal to the pair's.
        alone = self.path("alone.pem")
        self.assertEqual(nofuss("keygen", "--bits", "4096", alone).returncode, 0)
        r = nofuss("pubkey", "-o", self.path("alone.pub.pem"), alone)
        self.assertEqual(r.returncode, 0, r.stderr)
        src = self.path("img")
        mkimage(src, "0.1.1", size="8K")
        r = nofuss("sign", "--key", alone, "-o", self.path("img.signed"), src)
        self.assertIn("RSA-4096 (512-byte signature)", r.stdout)
        r = nofuss("verify", "--pubkey", self.path("alone.pub.pem"), self.path("img.signed"))
        self.assertEqual(r.returncode, 0, r.stdout)
        for args in (("--bits", "1024", self.path("n.pem")), ("--bits", "2049", self.path("n.pem")),
                     (), (self.path("a"), self.path("b"), self.path("c")),
                     (self.path("same"), self.path("same"))):
            r = nofuss("keygen", *args)
            self.assertEqual(r.returncode, EXIT_USAGE, (args, r.stderr))
        self.assertFalse(os.path.exists(self.path("n.pem")))

    def test_exit_statuses(self):
        src = self.path("img")
        mkimage(src, "0.1.1", size="8K")
        missing = self.path("missing.pem")
        checks = [
            (("sign", "--key", self.key["a2048"][1], "-o", self.path("o"), src), EXIT_KEY),
            (("sign", "--key", missing, "-o", self.path("o"), src), EXIT_KEY),
            (("sign", "--key", self.key["a2048"][0], "-o", self.path("o"), self.path("none")),
             EXIT_FAILED),
            (("sign", "--key", self.key["a2048"][0], src), EXIT_USAGE),
            (("sign", "-o", self.path("o"), src), EXIT_USAGE),
            (("verify", "--pubkey", missing, src), EXIT_KEY),
            (("verify", "--pubkey", self.key["a2048"][1], self.path("none")), EXIT_FAILED),
            (("verify", src), EXIT_USAGE),
            (("verify", "--pubkey", self.key["a2048"][1]), EXIT_USAGE),
            (("pubkey", missing), EXIT_KEY),
            (("pubkey", self.key["a2048"][1], self.key["a2048"][1]), EXIT_USAGE),
            (("pubkey", "-o", os.path.join(self.path("no-dir"), "k"), self.key["a2048"][1]),
             EXIT_FAILED),
        ]
        for args, want in checks:
            r = nofuss(*args)
            self.assertEqual(r.returncode, want, (args, r.stdout, r.stderr))
            if args[0] == "verify" and want == EXIT_FAILED:  # said on the file's line
                self.assertRegex(r.stdout, r"none: refused: No such file", args)
            else:
                self.assertRegex(r.stderr, r"^nofuss %s: " % args[0], args)
        for cmd in ("keygen", "pubkey", "sign", "verify"):
            r = nofuss(cmd, "--help")
            self.assertEqual(r.returncode, 0)
            self.assertIn("Exit status:\n  0  ", r.stdout)
        r = nofuss("--help")
        for cmd in ("keygen", "pubkey", "sign", "verify"):
            self.assertRegex(r.stdout, r"\n  %s +\S" % cmd)


if __name__ == "__main__":
    unittest.main()
