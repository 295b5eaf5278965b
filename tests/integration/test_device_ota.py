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

espota.py's own sequence of socket calls is played by espota_push() below
(written from its behaviour, docs/PEERS.md section 7): a refused image must
make it exit 1 at once, not spin on an empty answer. A copy of the real
espota.py from outside the tree is run too when NOFUSS_ESPOTA names it.
"""
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
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
ESPOTA = os.environ.get("NOFUSS_ESPOTA")  # a copy of espota.py, outside the tree
ESPOTA_CHUNK = 1460


def espota_push(ip, port, data, limit=10.0):
    """One firmware push with espota.py's calls in espota.py's order and
    with its timeouts, ending as it ends. Returns (exit status, how), the
    status None when espota.py would loop forever: it reads the result with
    recv(64) until a reply holds 'E' or 'O', so an empty reply (the device
    closed the connection) makes it spin at full speed. limit bounds the
    whole run (espota itself waits up to 60 s for the result)."""
    started = time.monotonic()
    lsn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(1)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        invitation = "%d %d %d %s\n" % (0, lsn.getsockname()[1], len(data),
                                        hashlib.md5(data).hexdigest())
        udp.sendto(invitation.encode(), (ip, port))
        udp.settimeout(10)
        try:
            answer = udp.recv(128).decode()
        except Exception:
            return 1, "No Answer"
        if answer != "OK":
            return 1, "Bad Answer: " + answer
        lsn.settimeout(10)
        try:
            conn, _ = lsn.accept()
        except Exception:
            return 1, "No response from device"
        with conn:
            conn.settimeout(None)
            for off in range(0, len(data), ESPOTA_CHUNK):
                conn.settimeout(10)
                try:
                    conn.sendall(data[off:off + ESPOTA_CHUNK])
                    conn.recv(32).decode()  # espota only looks for an 'O' in it
                except Exception:
                    return 1, "Error Uploading"
            conn.settimeout(min(60, limit))
            while time.monotonic() - started < limit:
                try:
                    reply = conn.recv(64).decode()
                except Exception:
                    return 1, "No Result!"
                if reply.find("E") >= 0:
                    return 1, reply
                if reply.find("O") >= 0:
                    return 0, "Result: OK"
                if reply == "":
                    return None, "spins at 100% CPU on an empty answer"
            return None, "no result within %g s" % limit
    finally:
        udp.close()
        lsn.close()


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

    def start_device(self, ip, base, *extra, mqtt_port=None, port=None):
        """A device provisioned with 0.1.0, listening for OTA on ip:port
        (None: a free port; 0: the one the device picks, read from its
        console). Returns (process, port, console path)."""
        if port is None:
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
        if port == 0:
            port = self.ota_ports(console)[0]
        return proc, port, console

    @staticmethod
    def ota_ports(console):
        """The ports the device listened on, boot after boot."""
        with open(console) as f:
            return [int(p) for p in re.findall(r"^\[ota\] listening on [\d.]+:(\d+)", f.read(),
                                               re.M)]

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
            text = f.read()
        self.assertNotIn("rebooting", text)
        self.assertEqual(text.count("Magic byte"), 1, text)  # said once
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

    def test_espota_gets_the_refusal_at_once(self):
        # 64 KB not starting with 0xE9: the device answers ERROR[10] and
        # drops the connection, so espota fails its next write and exits 1.
        proc, port, console = self.start_device("127.0.0.8", "/t/dev7")
        with open(self.images["bad"], "rb") as f:
            data = f.read() * 8
        started = time.monotonic()
        rc, how = espota_push("127.0.0.8", port, data)
        took = time.monotonic() - started
        self.assertEqual(rc, 1, how)
        self.assertLess(took, 2.0, how)
        self.wait_console(proc, console, "update failed")
        with open(console) as f:
            text = f.read()
        self.assertEqual(text.count("Magic byte"), 1, text)
        self.assertIsNone(proc.poll())
        # still serving afterwards
        with open(self.images["fw011"], "rb") as f:
            rc, how = espota_push("127.0.0.8", port, f.read())
        self.assertEqual(rc, 0, how)
        self.broker.wait_for("/t/dev7/version", "0.1.1")

    def test_real_espota_gets_the_refusal_at_once(self):
        if not ESPOTA or not os.path.isfile(ESPOTA):
            self.skipTest("SKIPPED: set NOFUSS_ESPOTA to a copy of espota.py to run it")
        proc, port, console = self.start_device("127.0.0.9", "/t/dev8")
        bad = os.path.join(self.tmp, "bad64k.bin")
        with open(self.images["bad"], "rb") as f, open(bad, "wb") as g:
            g.write(f.read() * 8)
        started = time.monotonic()
        r = subprocess.run([sys.executable, ESPOTA, "-i", "127.0.0.9", "-p", str(port),
                            "-f", bad], capture_output=True, text=True, timeout=20)
        took = time.monotonic() - started
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertLess(took, 5.0, r.stdout + r.stderr)

    def test_port_zero_is_kept_across_reboots(self):
        proc, port, console = self.start_device("127.0.0.10", "/t/dev9", port=0)
        self.broker.wait_for("/t/dev9/version", "0.1.0")
        rc, out = self.send("127.0.0.10", port, self.images["fw011"])
        self.assertEqual(rc, SEND_OK, out)
        self.wait_console(proc, console, "[ota] listening on", count=2)
        self.assertEqual(self.ota_ports(console), [port, port])
        # and a push to that port after the reboot goes in
        self.broker.wait_for("/t/dev9/version", "0.1.1")
        rc, out = self.send("127.0.0.10", port, self.images["fs020"], "--fs")
        self.assertEqual(rc, SEND_OK, out)
        self.broker.wait_for("/t/dev9/fsversion", "0.2.0")


if __name__ == "__main__":
    unittest.main()
