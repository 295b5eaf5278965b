"""`nofuss push` end to end (docs/PEERS.md sections 7 and 8): the real
`nofuss` binary against the real mosquitto broker (started here on
127.0.0.1, a free port) and `nofuss ota-recv` playing each device on a
loopback address. When ota-recv has committed the image and exited, the
test plays the device's reboot: it publishes the device's retained
"hello" (version, fsversion, heartbeat) with mosquitto_pub, as espurna
does on every MQTT connect. push must then prove the device came back on
the expected version; the summary table shows old and new versions.

Exit codes under test: 0 ok, 4 upload failed, 6 no proof / wrong version.
"""
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from test_push_discovery import MOSQUITTO, MOSQUITTO_PUB, Broker, clean_env

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
NOFUSS = os.environ.get("NOFUSS", os.path.join(SOURCE, "build", "tools", "nofuss"))
RUN_TIMEOUT = 40.0
EXIT_UPLOAD, EXIT_PROOF = 4, 6


class Device:
    """ota-recv on ip (a free port) plus the device's retained announcement
    under base; reboot() plays the device coming back once ota-recv exits."""

    def __init__(self, broker, base, ip, version="0.1.0", fsversion="0.1.0", auth=None,
                 max_size=None, out=None, cut_after=None):
        self.broker, self.base, self.ip = broker, base, ip
        args = [NOFUSS, "ota-recv", "--listen", ip + ":0", "--pause", "0.05",
                "--timeout", "3", "--wait", "15", "-o", out]
        if auth is not None:
            args += ["--auth", auth]
        if max_size is not None:
            args += ["--max-size", max_size]
        if cut_after is not None:
            args += ["--cut-after", str(cut_after)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"listening on [\d.]+:(\d+)$", line.strip())
        if not m:
            self.proc.kill()
            raise AssertionError("ota-recv did not start: %r" % line)
        self.port = int(m.group(1))
        self.thread = None
        self.recv_rc = None
        broker.publish(base + "/ip", ip)
        broker.publish(base + "/version", version)
        broker.publish(base + "/fsversion", fsversion)
        broker.publish(base + "/heartbeat", "1")

    def reboot(self, version=None, fsversion=None, heartbeat=True):
        """After ota-recv exits successfully, announce (None: skip) again."""

        def run():
            try:
                self.proc.communicate(timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
            self.recv_rc = self.proc.returncode
            if self.recv_rc != 0:
                return
            time.sleep(0.1)  # the device reboots
            if version is not None:
                self.broker.publish(self.base + "/version", version)
            if fsversion is not None:
                self.broker.publish(self.base + "/fsversion", fsversion)
            if heartbeat:
                self.broker.publish(self.base + "/heartbeat", "1")

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def finish(self):
        if self.thread is not None:
            self.thread.join(RUN_TIMEOUT)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


class PushTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if MOSQUITTO_PUB is None or not os.path.exists(MOSQUITTO):
            raise unittest.SkipTest("mosquitto and mosquitto-clients are needed")
        if not os.access(NOFUSS, os.X_OK):
            raise unittest.SkipTest("no nofuss binary at " + NOFUSS)
        cls.broker = Broker()
        cls.images = tempfile.mkdtemp(prefix="nofuss-push-images-")
        cls.fw = cls.mkimage("fw-0.1.1.bin", "0.1.1")
        cls.fs = cls.mkimage("fs-0.2.0.bin", "0.2.0", "--fs")

    @classmethod
    def mkimage(cls, name, version, *extra):
        path = os.path.join(cls.images, name)
        subprocess.run([NOFUSS, "mkimage", "--version", version, "--device", "TEST", "-o", path,
                        "--size", "16K"] + list(extra), check=True, capture_output=True,
                       timeout=RUN_TIMEOUT)
        return path

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        shutil.rmtree(cls.images, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="nofuss-push-")
        self.prefix = "nofuss-push/%d/%s" % (os.getpid(), self._testMethodName)
        self.devices = {}

    def tearDown(self):
        for d in self.devices.values():
            d.finish()
        shutil.rmtree(self.dir, ignore_errors=True)

    def device(self, name, ip="127.0.0.2", auth=None, ini_auth=None, image=None, fs=False,
               **kw):
        """A device for env name, its image in .pio/build/name/."""
        build = os.path.join(self.dir, ".pio", "build", name)
        os.makedirs(build)
        shutil.copy(image or (self.fs if fs else self.fw),
                    os.path.join(build, "littlefs.bin" if fs else "firmware.bin"))
        d = Device(self.broker, "%s/%s" % (self.prefix, name), ip, auth=auth,
                   out=os.path.join(self.dir, name + ".received"), **kw)
        d.ini_auth = ini_auth
        self.devices[name] = d
        return d

    def push(self, *args):
        ini = os.path.join(self.dir, "platformio.ini")
        with open(ini, "w") as f:
            for name, d in self.devices.items():
                flags = "--port %d" % d.port
                if d.ini_auth is not None:
                    flags = "--auth=%s %s" % (d.ini_auth, flags)
                f.write("[env:%s]\nboard = esp01_1m\ntopic = %s/ip\nupload_flags = %s\n\n"
                        % (name, d.base, flags))
        argv = [NOFUSS, "push", "-c", ini, "--broker", "127.0.0.1:%d" % self.broker.port]
        argv += list(args)
        started = time.monotonic()
        p = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                           env=clean_env())
        p.elapsed = time.monotonic() - started
        return p

    def row(self, p, name):
        for line in p.stdout.splitlines():
            if line.split()[:1] == [name]:
                return line
        self.fail("no summary row for %s in %r" % (name, p.stdout))

    def test_happy_path(self):
        d = self.device("washer")
        d.reboot(version="0.1.1")
        p = self.push("washer", "--wait", "10")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("DEVICE", p.stdout)
        row = self.row(p, "washer")
        self.assertRegex(row, r"^washer\s+127\.0\.0\.2\s+0\.1\.0\s+0\.1\.1\s+[\d.]+s\s+ok$")
        with open(self.fw, "rb") as f, open(os.path.join(self.dir, "washer.received"),
                                             "rb") as g:
            self.assertEqual(f.read(), g.read())
        self.assertIn("washer: uploading 100%", p.stderr)

    def test_five_devices_in_parallel(self):
        names = ["dev%d" % i for i in range(5)]
        for i, name in enumerate(names):
            self.device(name, ip="127.0.0.%d" % (i + 2)).reboot(version="0.1.1")
        p = self.push("-j", "5", "--wait", "10", *names)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for i, name in enumerate(names):
            row = self.row(p, name)
            self.assertIn("127.0.0.%d" % (i + 2), row)
            self.assertTrue(row.endswith(" ok"), row)
        self.assertLess(p.elapsed, 15)

    def test_wrong_password(self):
        d = self.device("washer", auth="right", ini_auth="wrong")
        d.reboot(version="0.1.1")
        p = self.push("washer", "--wait", "3")
        self.assertEqual(p.returncode, EXIT_UPLOAD, p.stdout + p.stderr)
        row = self.row(p, "washer")
        self.assertIn("FAILED: upload failed", row)
        self.assertIn("Authentication Failed", row)

    def test_right_password(self):
        d = self.device("washer", auth="fibonacci", ini_auth="fibonacci")
        d.reboot(version="0.1.1")
        p = self.push("washer", "--wait", "10")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_device_never_comes_back(self):
        d = self.device("washer")
        d.reboot(version=None, heartbeat=False)
        p = self.push("washer", "--wait", "3")
        self.assertEqual(p.returncode, EXIT_PROOF, p.stdout + p.stderr)
        self.assertIn("did not come back within 3 s", self.row(p, "washer"))
        self.assertLess(p.elapsed, 3 + 6)

    def test_version_without_heartbeat(self):
        d = self.device("washer")
        d.reboot(version="0.1.1", heartbeat=False)
        p = self.push("washer", "--wait", "2")
        self.assertEqual(p.returncode, EXIT_PROOF, p.stdout + p.stderr)
        self.assertIn("announced 0.1.1 but no heartbeat/status", self.row(p, "washer"))

    def test_comes_back_on_old_version(self):
        d = self.device("washer")
        d.reboot(version="0.1.0")
        p = self.push("washer", "--wait", "10")
        self.assertEqual(p.returncode, EXIT_PROOF, p.stdout + p.stderr)
        row = self.row(p, "washer")
        self.assertIn("came back with 0.1.0, expected 0.1.1", row)
        self.assertRegex(row, r"^washer\s+127\.0\.0\.2\s+0\.1\.0\s+0\.1\.0\s")

    def test_expect_version(self):
        d = self.device("washer")
        d.reboot(version="0.1.1")
        p = self.push("washer", "--wait", "10", "--expect-version", "9.9.9")
        self.assertEqual(p.returncode, EXIT_PROOF, p.stdout + p.stderr)
        self.assertIn("came back with 0.1.1, expected 9.9.9", self.row(p, "washer"))

    def test_image_without_version_must_change(self):
        plain = os.path.join(self.dir, "plain.bin")
        with open(plain, "wb") as f:
            f.write(b"\xe9" + b"\x00" * 3000)
        d = self.device("washer", image=plain)
        d.reboot(version="0.1.0")
        p = self.push("washer", "--wait", "10")
        self.assertEqual(p.returncode, EXIT_PROOF, p.stdout + p.stderr)
        self.assertIn("came back with 0.1.0 unchanged", self.row(p, "washer"))

    def test_image_too_big(self):
        d = self.device("washer", max_size="4K")
        d.reboot(version="0.1.1")
        p = self.push("washer", "--wait", "3")
        self.assertEqual(p.returncode, EXIT_UPLOAD, p.stdout + p.stderr)
        self.assertIn("ERROR[4]: Not Enough Space", self.row(p, "washer"))

    def test_transfer_cut_midway(self):
        d = self.device("washer", cut_after=8000)
        d.reboot(version="0.1.1")
        p = self.push("washer", "--wait", "3")
        self.assertEqual(p.returncode, EXIT_UPLOAD, p.stdout + p.stderr)
        self.assertIn("FAILED: upload failed", self.row(p, "washer"))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "washer.received")),
                         "a cut image is never committed")

    def test_filesystem_proof_on_fsversion(self):
        d = self.device("washer", fs=True)
        d.reboot(fsversion="0.2.0")
        p = self.push("--fs", "washer", "--wait", "10")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(self.row(p, "washer"),
                         r"^washer\s+127\.0\.0\.2\s+0\.1\.0\s+0\.2\.0\s+[\d.]+s\s+ok$")

    def test_one_failure_among_several(self):
        self.device("good", ip="127.0.0.2").reboot(version="0.1.1")
        self.device("bad", ip="127.0.0.3").reboot(version="0.1.0")
        p = self.push("-j", "2", "--wait", "10", "good", "bad")
        self.assertEqual(p.returncode, EXIT_PROOF, p.stdout + p.stderr)
        self.assertTrue(self.row(p, "good").endswith(" ok"))
        self.assertIn("FAILED", self.row(p, "bad"))


if __name__ == "__main__":
    unittest.main()
