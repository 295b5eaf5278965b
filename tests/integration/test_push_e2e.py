"""`nofuss push` end to end against simulated devices: each `nofuss device`
listens for ArduinoOTA on its own loopback address (127.0.0.2, 127.0.0.3,
...) and announces itself on a real mosquitto broker; push finds it through
the retained <base>/ip, uploads the image, and reports success only once the
device has rebooted and announced the new version (docs/PEERS.md sections 7 and 8).
"""
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from broker import MOSQUITTO, MOSQUITTO_SUB, RUN_TIMEOUT, Broker, free_tcp_port, free_udp_port
from test_device_ota import NOFUSS


class PushEndToEndTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(NOFUSS):
            raise unittest.SkipTest("no nofuss binary at " + NOFUSS)
        if not (os.path.exists(MOSQUITTO) and MOSQUITTO_SUB):
            raise unittest.SkipTest("mosquitto and mosquitto-clients are needed")
        cls.broker = Broker()
        cls.dead_port = free_tcp_port()  # no NoFUSS server: checks fail fast

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nofuss-push-e2e-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.procs = []
        self.addCleanup(self.kill_all)

    def kill_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)

    def device(self, n, auth=None):
        """Simulated device n at 0.1.0 on 127.0.0.<n+1>, base /e2e/<id>/devN.
        Returns (env name, ip, port, base)."""
        ip = "127.0.0.%d" % (n + 1)
        port = free_udp_port(ip)
        base = "/e2e/%s/dev%d" % (self.id().rsplit(".", 1)[-1], n)
        work = os.path.join(self.tmp, "dev%d" % n)
        os.makedirs(work)
        args = [NOFUSS, "device", "--flash", os.path.join(work, "flash"),
                "--version", "0.1.0", "--device", "dev%d" % n,
                "--server", "http://127.0.0.1:%d/" % self.dead_port,
                "--interval", "3600", "--connect-timeout", "1",
                "--ota", "%s:%d" % (ip, port), "--ota-pause", "0.05",
                "--mqtt", "127.0.0.1:%d" % self.broker.port, "--mqtt-base", base]
        if auth:
            args += ["--ota-auth", auth]
        env = dict(os.environ)
        env.pop("NOFUSS_POWER_CUT_AT", None)
        log = open(os.path.join(work, "console.log"), "w")
        self.addCleanup(log.close)
        self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env))
        return "dev%d" % n, ip, port, base

    def project(self, devices, auth=None, version="0.1.1"):
        """A PlatformIO project with one env per device and its built image."""
        lines = ["[platformio]", "default_envs = dev1", ""]
        for name, _ip, port, base in devices:
            flags = "--port %d" % port + (" --auth=%s" % auth if auth else "")
            lines += ["[env:%s]" % name, "platform = espressif8266", "board = esp01_1m",
                      "custom_topic = %s/ip   ; where the device says it is" % base,
                      "upload_flags = %s" % flags, ""]
            out = os.path.join(self.tmp, ".pio", "build", name)
            os.makedirs(out, exist_ok=True)
            subprocess.run([NOFUSS, "mkimage", "--version", version, "-d", name, "--size", "64K",
                            "-o", os.path.join(out, "firmware.bin")], check=True,
                           stdout=subprocess.DEVNULL, timeout=RUN_TIMEOUT)
        path = os.path.join(self.tmp, "platformio.ini")
        with open(path, "w") as f:
            f.write("\n".join(lines))
        return path

    def push(self, ini, *args):
        r = subprocess.run([NOFUSS, "push", "-c", ini, "--broker",
                            "127.0.0.1:%d" % self.broker.port, "--wait", "30"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=RUN_TIMEOUT * 3)
        return r.returncode, r.stdout.decode()

    def wait_announced(self, devices, version="0.1.0"):
        for _name, _ip, _port, base in devices:
            self.broker.wait_for(base + "/version", version)
            self.broker.wait_for(base + "/ip", _ip)

    def test_one_device(self):
        devs = [self.device(1)]
        ini = self.project(devs)
        self.wait_announced(devs)
        rc, out = self.push(ini, "dev1")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"dev1\s+127\.0\.0\.2\s+0\.1\.0\s+0\.1\.1")
        self.broker.wait_for(devs[0][3] + "/version", "0.1.1")

    def test_twenty_devices_in_parallel(self):
        devs = [self.device(n) for n in range(1, 21)]
        ini = self.project(devs)
        self.wait_announced(devs)
        t0 = time.monotonic()
        rc, out = self.push(ini, "--all", "-j", "10")
        self.assertEqual(rc, 0, out)
        for name, ip, _port, base in devs:
            self.assertRegex(out, r"%s\s+%s\s+0\.1\.0\s+0\.1\.1" % (name, re.escape(ip)))
            self.assertEqual(self.broker.retained(base + "/version"), "0.1.1")
        print("\n20 devices pushed and proved in %.1f s" % (time.monotonic() - t0))

    def test_password(self):
        devs = [self.device(1, auth="fibonacci")]
        self.wait_announced(devs)
        rc, out = self.push(self.project(devs, auth="wrong"), "dev1")
        self.assertNotEqual(rc, 0, out)
        self.assertEqual(self.broker.retained(devs[0][3] + "/version"), "0.1.0")
        rc, out = self.push(self.project(devs, auth="fibonacci"), "dev1")
        self.assertEqual(rc, 0, out)
        self.broker.wait_for(devs[0][3] + "/version", "0.1.1")


if __name__ == "__main__":
    unittest.main()
