"""Device credentials (credentials = FILE, auth-checks; server/creds.c):
the real nofussd with a credentials file made by `nofussd --hash-credential`.

A right, a wrong and a missing credential, for checks and for downloads,
one per device and one for the whole fleet, as HTTP Basic (what the ESP
updaters send after setAuthorization) and as a bearer token. Without
auth-checks only images need one. Anything refused is 401 with
WWW-Authenticate and no body but "Unauthorized", logged with the address
and the reason, and the file stores no secret. A reload swaps the
credentials with the rules; a bad file keeps the old ones. And the
simulated device with --credential updates through it; without, it cannot.
"""
import base64
import os
import re
import signal
import subprocess

from harness import NOFUSSD, Server, ServerTest, check_headers, esp_image, get, md5, wait_until
import test_device as td

MAC = "5C:CF:7F:8B:6B:26"
IMAGE = esp_image("auth", 64 * 1024)
RULES = [{"origin": {"device": "TEST", "max": "1.0.0"},
          "target": {"version": "2.0.0", "firmware": "/fw/test-2.0.0.bin"}}]
DOWNLOAD = {"User-Agent": "ESP8266-http-Update", "x-ESP8266-mode": "sketch"}


def hash_line(name, secret):
    r = subprocess.run([NOFUSSD, "--hash-credential", name], input=secret + "\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def basic(name, secret):
    return "Basic " + base64.b64encode(("%s:%s" % (name, secret)).encode()).decode()


class CredentialsTest(ServerTest):
    rules = RULES
    files = {"fw/test-2.0.0.bin": IMAGE}

    def setUp(self):
        super().setUp()
        self.secrets = {"dev-5CCF7F8B6B26": "d3v1ce-s3cret", "fleet-kitchen": "fl33t-s3cret"}
        self.creds = os.path.join(self.data.path, "credentials")
        self.write_creds(self.secrets)

    def write_creds(self, secrets):
        with open(self.creds + ".new", "w") as f:
            f.write("# device and fleet credentials\n")
            for name, secret in secrets.items():
                f.write(hash_line(name, secret) + "\n")
        os.rename(self.creds + ".new", self.creds)

    def check(self, auth=None):
        h = check_headers(MAC, "TEST", "0.5.0")
        if auth:
            h["Authorization"] = auth
        return get(self.server.port, "/", h, version="1.1")

    def download(self, auth=None):
        h = dict(DOWNLOAD)
        if auth:
            h["Authorization"] = auth
        return get(self.server.port, "/fw/test-2.0.0.bin", h, version="1.1")

    def assert_refused(self, r, what):
        self.assertEqual(r.status, 401, what)
        self.assertEqual(r.header("WWW-Authenticate"), 'Basic realm="nofuss", charset="UTF-8"')
        self.assertEqual(r.body, b"Unauthorized\n", what)

    def cases(self):
        """(label, Authorization value or None, accepted)"""
        dev, fleet = "dev-5CCF7F8B6B26", "fleet-kitchen"
        return [
            ("device basic", basic(dev, self.secrets[dev]), True),
            ("fleet basic", basic(fleet, self.secrets[fleet]), True),
            ("device bearer", "Bearer %s:%s" % (dev, self.secrets[dev]), True),
            ("fleet bearer", "bearer %s:%s" % (fleet, self.secrets[fleet]), True),
            ("wrong secret", basic(dev, "guess"), False),
            ("another's secret", basic(dev, self.secrets[fleet]), False),
            ("unknown name", basic("dev-000000000000", "x"), False),
            ("missing", None, False),
            ("malformed", "Basic !!!notbase64", False),
            ("digest scheme", 'Digest username="dev"', False),
        ]

    def test_checks_and_images_need_a_credential(self):
        s = self.start("--credentials", self.creds, "--auth-checks")
        refused = 0
        for label, auth, ok in self.cases():
            c, d = self.check(auth), self.download(auth)
            if ok:
                self.assertEqual(c.status, 200, label)
                self.assertEqual(c.json()["version"], "2.0.0", label)
                self.assertEqual((d.status, d.body, d.header("x-MD5")), (200, IMAGE, md5(IMAGE)),
                                 label)
            else:
                self.assert_refused(c, label + ": check")
                self.assert_refused(d, label + ": download")
                refused += 2
        # At most 10 lines a second are logged (a scan must not flood the
        # journal); the first 10 refusals are always among them.
        err = wait_until(lambda: s.stderr().count("401 to ") >= 10 and s.stderr()) or s.stderr()
        self.assertIn("401 to 127.0.0.1 for a check: wrong secret, name dev-5CCF7F8B6B26", err)
        self.assertIn("401 to 127.0.0.1 for an image: no credential", err)
        self.assertIn("401 to 127.0.0.1 for an image: unknown name, name dev-000000000000", err)
        self.assertIn("401 to 127.0.0.1 for a check: malformed Authorization header", err)
        # The check log holds only the checks that were answered.
        def logged():
            with open(s.check_log) as f:
                return len(re.findall(r"MAC: ", f.read()))
        wait_until(lambda: logged() >= 4)
        self.assertEqual(logged(), 4)
        # No secret is stored.
        with open(self.creds) as f:
            text = f.read()
        for secret in self.secrets.values():
            self.assertNotIn(secret, text)
        print("\ncredentials: %d of %d wrong, missing or malformed requests refused (401)"
              % (refused, refused))

    def test_only_images_without_auth_checks(self):
        self.start("--credentials", self.creds)
        self.assertEqual(self.check().status, 200)
        self.assert_refused(self.download(), "missing")
        self.assert_refused(self.download(basic("fleet-kitchen", "no")), "wrong")
        self.assertEqual(self.download(basic("fleet-kitchen", "fl33t-s3cret")).status, 200)
        # A download of a file that is not there: 401 first, 404 only with a credential.
        h = dict(DOWNLOAD)
        self.assertEqual(get(self.server.port, "/fw/none.bin", h).status, 401)
        h["Authorization"] = basic("fleet-kitchen", "fl33t-s3cret")
        self.assertEqual(get(self.server.port, "/fw/none.bin", h).status, 404)

    def test_reload_swaps_credentials(self):
        s = self.start("--credentials", self.creds)
        old = basic("fleet-kitchen", "fl33t-s3cret")
        self.assertEqual(self.download(old).status, 200)
        self.write_creds({"fleet-kitchen": "n3w-s3cret"})  # the secret rotated
        mark = s.line_count()
        s.signal(signal.SIGHUP)
        s.wait_for(r"reloaded ", start=mark)
        self.assert_refused(self.download(old), "the old secret")
        new = basic("fleet-kitchen", "n3w-s3cret")
        self.assertEqual(self.download(new).status, 200)
        with open(self.creds, "a") as f:
            f.write("broken line\n")
        mark = s.line_count()
        s.signal(signal.SIGHUP)
        line = s.wait_for(r"reload failed", start=mark)
        self.assertRegex(line, r"credentials:3: not NAME:SALT:HASH")
        self.assertEqual(self.download(new).status, 200)

    def test_bad_files_refused_at_start(self):
        with open(self.creds, "w") as f:
            f.write("dev:zz:00\n")
        r = subprocess.run([NOFUSSD, "-d", self.data.path, "--credentials", self.creds,
                            "--check"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("credentials:1: the salt must be 32 and the hash 64 hex digits", r.stderr)
        r = subprocess.run([NOFUSSD, "-d", self.data.path, "--auth-checks", "--check"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("auth-checks: only with credentials", r.stderr)


class DeviceCredentialTest(td.DeviceTest):
    """`nofuss device --credential` (the POSIX port sends HTTP Basic with
    every request) against nofussd with credentials and auth-checks: the
    right one updates the device; a wrong one or none gets nothing."""
    rules = td.UPDATE_RULES

    def setUp(self):
        super().setUp()
        self.data.add_file("firmware/test-0.1.1.bin", td.image_bytes(self.tmp, "0.1.1"))
        self.data.add_file("firmware/test-0.1.1-fs.bin",
                           td.image_bytes(self.tmp, "0.1.1", "--fs"))
        self.flash = td.provision(os.path.join(self.tmp, "flash"))
        self.creds = os.path.join(self.data.path, "credentials")
        with open(self.creds, "w") as f:
            f.write(hash_line("dev-1", "s3cret") + "\n")

    def test_device_with_credential(self):
        self.server = Server(self.data, "--no-watch", "--credentials", self.creds,
                             "--auth-checks")
        # The loop is up once it answers (401: even this needs a credential).
        self.assertEqual(get(self.server.port, "/nofuss-test-ready").status, 401)
        self.device = td.Device(self.flash, self.url())
        for args in ((), ("--credential", "dev-1:wrong")):
            r = self.device.run("--once", *args)
            self.assertEqual(r.rc, 1, str(r))
            self.assertEqual(r.boots, [("a", "0.1.0", "0.1.0", td.DEVICE, "normal")], str(r))
            self.assertNotIn("UPDATING", r.messages(), str(r))
        r = self.device.run("--until-up-to-date", "--max-checks", "3",
                            "--credential", "dev-1:s3cret")
        td.EndToEndTest.assert_updated(self, r, "--credential", "dev-1:s3cret")
