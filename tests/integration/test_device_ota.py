"""`nofuss device --ota ... --mqtt ...`: the simulated device taking an
ArduinoOTA push (docs/PEERS.md section 7) into its own flash, and announcing
itself on MQTT (retained BASE/ip, BASE/version, BASE/fsversion,
BASE/status) as an espurna firmware does.

The real `nofuss` binary (env NOFUSS, else build/tools/nofuss), images made
with `nofuss mkimage`, pushed with `nofuss ota-send`, and the real mosquitto
broker started here on 127.0.0.1 with a free port and a temporary
configuration. The devices check a closed loopback port with a long
interval, so no NoFUSS check interferes. Each test uses its own loopback
address (127.0.0.2, 127.0.0.3, ...) and base topic.
"""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from broker import (MOSQUITTO, MOSQUITTO_SUB, RUN_TIMEOUT, WAIT, Broker, free_tcp_port,
                    free_udp_port)

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
NOFUSS = os.environ.get("NOFUSS", os.path.join(SOURCE, "build", "tools", "nofuss"))

# ota-send's exit status
SEND_OK, SEND_AUTH, SEND_DEVICE_ERR, SEND_FINAL_ERR = 0, 4, 5, 8


class DeviceOtaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(NOFUSS):
            raise unittest.SkipTest("no nofuss binary at " + NOFUSS)
        if not (os.path.exists(MOSQUITTO) and MOSQUITTO_SUB):
            raise unittest.SkipTest("mosquitto and mosquitto-clients are needed")
        cls.broker = Broker()
        cls.tmp = tempfile.mkdtemp(prefix="nofuss-devota-")
        cls.dead_port = free_tcp_port()  # nothing listens: the checks fail fast
        cls.images = {}
        cls.images["fw011"] = cls.mkimage("fw011.bin", "--version", "0.1.1", "-d", "dev1")
        cls.images["big"] = cls.mkimage("big.bin", "--version", "0.9.9", "-d", "dev1",
                                        "--size", "2M")
        cls.images["fs020"] = cls.mkimage("fs020.bin", "--fs", "--version", "0.2.0",
                                          "--size", "64K")
        bad = os.path.join(cls.tmp, "notfw.bin")
        with open(bad, "wb") as f:
            f.write(b"\x00" + os.urandom(8191))
        cls.images["bad"] = bad

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def mkimage(cls, name, *args):
        path = os.path.join(cls.tmp, name)
        subprocess.run([NOFUSS, "mkimage", "-o", path] + list(args), check=True,
                       timeout=RUN_TIMEOUT, stdout=subprocess.DEVNULL)
        return path

    def start_device(self, ip, base, *extra, mqtt_port=None):
        """A device provisioned with 0.1.0, listening for OTA on ip:<free
        port>. Returns (process, port, console path)."""
        port = free_udp_port(ip)
        work = tempfile.mkdtemp(prefix="dev-", dir=self.tmp)
        console = os.path.join(work, "console.log")
        out = open(console, "w")
        self.addCleanup(out.close)
        args = [NOFUSS, "device", "--flash", os.path.join(work, "flash"),
                "--version", "0.1.0", "--device", "dev1",
                "--server", "http://127.0.0.1:%d/" % self.dead_port,
                "--interval", "3600", "--connect-timeout", "1",
                "--ota", "%s:%d" % (ip, port), "--ota-pause", "0.05",
                "--mqtt", "127.0.0.1:%d" % (mqtt_port or self.broker.port),
                "--mqtt-base", base] + list(extra)
        env = dict(os.environ)
        env.pop("NOFUSS_SIM_RESUME", None)
        env.pop("NOFUSS_POWER_CUT_AT", None)
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.addCleanup(self.kill, proc)
        self.wait_console(proc, console, "[ota] listening on")
        return proc, port, console

    @staticmethod
    def kill(proc):
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)

    def wait_console(self, proc, console, text, count=1, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(console) as f:
                if f.read().count(text) >= count:
                    return
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        with open(console) as f:
            self.fail("no %r (x%d) in the console (exit %s):\n%s"
                      % (text, count, proc.poll(), f.read()))

    def send(self, ip, port, image, *extra):
        r = subprocess.run([NOFUSS, "ota-send", "-q", "--ip", ip, "--port", str(port),
                            "--timeout", "5"] + list(extra) + [image],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=RUN_TIMEOUT)
        return r.returncode, r.stdout.decode()

    def test_announce_then_push_firmware(self):
        proc, port, console = self.start_device("127.0.0.2", "/t/dev1")
        b = self.broker
        b.wait_for("/t/dev1/version", "0.1.0")
        self.assertEqual(b.retained("/t/dev1/ip"), "127.0.0.2")
        self.assertEqual(b.retained("/t/dev1/fsversion"), "0.1.0")
        self.assertEqual(b.retained("/t/dev1/status"), "1")
        rc, out = self.send("127.0.0.2", port, self.images["fw011"])
        self.assertEqual(rc, SEND_OK, out)
        b.wait_for("/t/dev1/version", "0.1.1")
        self.wait_console(proc, console, "slot b confirmed")
        with open(console) as f:
            text = f.read()
        self.assertIn("version=0.1.1", text)
        self.assertIn("mode=trial", text)
        self.assertIn("reset reason: software restart", text)
        self.assertIsNone(proc.poll())
        b.wait_for("/t/dev1/status", "1")

    def test_wrong_password_keeps_old_image(self):
        proc, port, console = self.start_device("127.0.0.3", "/t/dev2",
                                                "--ota-auth", "fibonacci")
        self.broker.wait_for("/t/dev2/version", "0.1.0")
        rc, out = self.send("127.0.0.3", port, self.images["fw011"], "--auth", "wrong")
        self.assertEqual(rc, SEND_AUTH, out)
        time.sleep(0.3)
        self.assertIsNone(proc.poll())
        self.assertEqual(self.broker.retained("/t/dev2/version"), "0.1.0")
        # the right password still works afterwards
        rc, out = self.send("127.0.0.3", port, self.images["fw011"], "--auth", "fibonacci")
        self.assertEqual(rc, SEND_OK, out)
        self.broker.wait_for("/t/dev2/version", "0.1.1")

    def test_too_big_is_refused(self):
        proc, port, console = self.start_device("127.0.0.4", "/t/dev3",
                                                "--slot-size", "1M")
        self.broker.wait_for("/t/dev3/version", "0.1.0")
        rc, out = self.send("127.0.0.4", port, self.images["big"])
        self.assertEqual(rc, SEND_DEVICE_ERR, out)
        time.sleep(0.3)
        self.assertIsNone(proc.poll())
        self.assertEqual(self.broker.retained("/t/dev3/version"), "0.1.0")
        with open(console) as f:
            self.assertNotIn("rebooting", f.read())

    def test_bad_magic_is_refused(self):
        proc, port, console = self.start_device("127.0.0.5", "/t/dev4")
        self.broker.wait_for("/t/dev4/version", "0.1.0")
        rc, out = self.send("127.0.0.5", port, self.images["bad"])
        self.assertEqual(rc, SEND_FINAL_ERR, out)
        self.wait_console(proc, console, "update failed")
        self.assertIsNone(proc.poll())
        self.assertEqual(self.broker.retained("/t/dev4/version"), "0.1.0")
        with open(console) as f:
            self.assertNotIn("rebooting", f.read())
        # still serving: a good image goes in afterwards
        rc, out = self.send("127.0.0.5", port, self.images["fw011"])
        self.assertEqual(rc, SEND_OK, out)
        self.broker.wait_for("/t/dev4/version", "0.1.1")

    def test_filesystem_push_updates_fsversion(self):
        proc, port, console = self.start_device("127.0.0.6", "/t/dev5")
        self.broker.wait_for("/t/dev5/fsversion", "0.1.0")
        rc, out = self.send("127.0.0.6", port, self.images["fs020"], "--fs")
        self.assertEqual(rc, SEND_OK, out)
        self.broker.wait_for("/t/dev5/fsversion", "0.2.0")
        self.assertEqual(self.broker.retained("/t/dev5/version"), "0.1.0")
        self.assertIsNone(proc.poll())

    def test_broker_down_does_not_stop_ota(self):
        proc, port, console = self.start_device("127.0.0.7", "/t/dev6",
                                                mqtt_port=free_tcp_port())
        self.wait_console(proc, console, "[mqtt] broker unavailable")
        rc, out = self.send("127.0.0.7", port, self.images["fw011"])
        self.assertEqual(rc, SEND_OK, out)
        self.wait_console(proc, console, "slot b confirmed")
        self.assertIsNone(proc.poll())


if __name__ == "__main__":
    unittest.main()
