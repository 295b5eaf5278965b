"""`nofuss push` finding devices: the real `nofuss` binary against the real
mosquitto broker (Debian's), started here on 127.0.0.1 with a free port and
a temporary configuration, and stopped afterwards. Retained values are
published with mosquitto_pub -r, as a device announcing itself would.

The discovery half is covered here (--dry-run, the exit codes, the
timeout); the upload and its proof are in test_push.py. Without --dry-run
push uploads: here only once, to a fake device on loopback that refuses
the image (exit 4, upload failed).

Exit codes under test (the table every subcommand shares, nofuss --help):
1 unknown environment, no topic or no project file, 2 bad usage, 3 no
usable IP, 4 upload failed.
"""
EXIT_PROJECT, EXIT_USAGE = 1, 2
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from broker import MOSQUITTO, MOSQUITTO_PUB, RUN_TIMEOUT, Broker, free_tcp_port

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
NOFUSS = os.environ.get("NOFUSS", os.path.join(SOURCE, "build", "tools", "nofuss"))

PIO_INI = """\
; a PlatformIO project, as the seed's deploy script knew them
# full-line comments of both kinds
[platformio]
default_envs = washer

[env]
framework = arduino

[env:washer]
platform = espressif8266
board = esp01_1m
topic = {prefix}/washer/ip          ; or custom_topic
upload_flags = --auth=fibonacci --port 8266

[env:dryer]
platform = espressif32
board = esp32dev
custom_topic = {prefix}/dryer/ip  # a comment of the other kind
upload_flags =
    --progress
    --port=3232

[env:lamp]
board = esp01_1m
topic = {prefix}/lamp/ip

[env:silent]
board = esp01_1m
topic = {prefix}/silent/ip

[env:bogus]
board = esp01_1m
topic = {prefix}/bogus/ip

[env:v6]
board = esp01_1m
topic = {prefix}/v6/ip

[env:notopic]
board = esp01_1m
upload_flags = --auth=x
"""

ENVS_WITH_IMAGES = ["washer", "dryer", "lamp", "silent", "bogus", "v6"]


class Project:
    """A folder with platformio.ini and built images for some envs."""

    def __init__(self, prefix):
        self.dir = tempfile.mkdtemp(prefix="nofuss-push-project-")
        self.ini = os.path.join(self.dir, "platformio.ini")
        with open(self.ini, "w") as f:
            f.write(PIO_INI.format(prefix=prefix))
        self.sizes = {}
        for i, env in enumerate(ENVS_WITH_IMAGES):
            build = os.path.join(self.dir, ".pio", "build", env)
            os.makedirs(build)
            size = 1000 + i
            with open(os.path.join(build, "firmware.bin"), "wb") as f:
                f.write(b"\xe9" * size)
            self.sizes[env] = size
        with open(os.path.join(self.dir, ".pio", "build", "washer", "littlefs.bin"), "wb") as f:
            f.write(b"\0" * 4096)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOFUSS_MQTT_")}
    env.update(extra)
    return env


class PushTestBase(unittest.TestCase):
    users = None

    @classmethod
    def setUpClass(cls):
        if MOSQUITTO_PUB is None or not os.path.exists(MOSQUITTO):
            raise unittest.SkipTest("mosquitto and mosquitto-clients are needed "
                                    "(scripts/bootstrap.sh)")
        if not os.access(NOFUSS, os.X_OK):
            raise unittest.SkipTest("no nofuss binary at " + NOFUSS)
        cls.prefix = "nofuss-test/%d" % os.getpid()
        cls.broker = Broker(cls.users)
        cls.project = Project(cls.prefix)

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        cls.project.remove()

    def push(self, *args, env=None, broker=True):
        argv = [NOFUSS, "push", "-c", self.project.ini]
        if broker:
            argv += ["--broker", "127.0.0.1:%d" % self.broker.port]
        argv += list(args)
        started = time.monotonic()
        p = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                           env=env if env is not None else clean_env())
        p.elapsed = time.monotonic() - started
        return p

    def topic(self, env):
        return "%s/%s/ip" % (self.prefix, env)


class PushDiscoveryTest(PushTestBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.broker.publish(cls.topic(cls, "washer"), "192.168.1.50")
        cls.broker.publish(cls.topic(cls, "dryer"), "10.0.0.7")
        cls.broker.publish(cls.topic(cls, "lamp"), "172.16.0.1")
        cls.broker.publish(cls.topic(cls, "v6"), "fe80::1")
        cls.broker.publish(cls.topic(cls, "bogus"), "010.1.1.1")

    def test_dry_run_resolves_retained_ip(self):
        p = self.push("--dry-run", "washer")
        self.assertEqual(p.returncode, 0, p.stderr)
        line = p.stdout.strip()
        self.assertIn("washer: topic=%s " % self.topic("washer"), line)
        self.assertIn(" ip=192.168.1.50 ", line)
        self.assertIn(" port=8266 ", line)
        self.assertIn(" auth=yes ", line)
        self.assertIn(" kind=firmware ", line)
        self.assertIn("/.pio/build/washer/firmware.bin", line)
        self.assertTrue(line.endswith(" size=%d" % self.project.sizes["washer"]), line)

    def test_custom_topic_and_multiline_flags(self):
        p = self.push("-n", "dryer")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(" ip=10.0.0.7 port=3232 auth=no ", p.stdout)

    def test_ipv6_address_is_refused(self):
        # The push (ArduinoOTA, espota) is IPv4 only: no usable address.
        p = self.push("-n", "v6")
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertIn("no usable IP address", p.stderr)
        self.assertIn("'fe80::1' is an IPv6 address", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_unusable_addresses_are_refused(self):
        # Each retained value in turn, published raw (a NUL included).
        ini = os.path.join(self.project.dir, "odd.ini")
        with open(ini, "w") as f:
            f.write("[env:odd]\ntopic = %s\n" % self.topic("odd"))
        image = os.path.join(self.project.dir, "odd.bin")
        with open(image, "wb") as f:
            f.write(b"\xe9" * 100)
        for value, quoted, why in (
                (b"::1", "'::1'", "IPv4 only"),
                (b"127.0.0.1\0evil", "'127.0.0.1\\x00evil'", "not an IPv4 dotted quad"),
                (b"0.0.0.0", "'0.0.0.0'", "not a host's address"),
                (b"255.255.255.255", "'255.255.255.255'", "broadcast"),
                (b"224.0.0.1", "'224.0.0.1'", "multicast"),
                (b"239.255.255.250", "'239.255.255.250'", "multicast")):
            with self.subTest(value=value):
                subprocess.run([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(self.broker.port),
                                "-t", self.topic("odd"), "-r", "-s"], input=value,
                               check=True, timeout=RUN_TIMEOUT)
                p = self.push("-n", "-c", ini, "--file", image, "odd")
                self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
                self.assertIn("no usable IP address on topic '%s': %s is "
                              % (self.topic("odd"), quoted), p.stderr)
                self.assertIn(why, p.stderr)
                self.assertEqual(p.stdout, "")

    def test_filesystem_image(self):
        p = self.push("-n", "--fs", "washer")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(" kind=filesystem ", p.stdout)
        self.assertIn("/.pio/build/washer/littlefs.bin size=4096", p.stdout)

    def test_missing_image(self):
        p = self.push("-n", "--fs", "lamp")
        self.assertEqual(p.returncode, 5, p.stdout + p.stderr)
        self.assertIn("littlefs.bin", p.stderr)

    def test_file_option(self):
        path = os.path.join(self.project.dir, "other.bin")
        with open(path, "wb") as f:
            f.write(b"x" * 77)
        p = self.push("-n", "--file", path, "lamp")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("image=%s size=77" % path, p.stdout)

    def test_nothing_retained_times_out(self):
        timeout = 1.5
        p = self.push("-n", "--timeout", str(timeout), "silent")
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertLess(p.elapsed, timeout + 3)
        self.assertIn("nothing retained", p.stderr)
        self.assertIn(self.topic("silent"), p.stderr)

    def test_invalid_ip_is_quoted(self):
        p = self.push("-n", "bogus")
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertIn("'010.1.1.1' is not an IPv4 dotted quad", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_unknown_environment(self):
        p = self.push("-n", "nosuch")
        self.assertEqual(p.returncode, EXIT_PROJECT)
        self.assertIn("unknown environment 'nosuch'", p.stderr)

    def test_environment_without_topic(self):
        p = self.push("-n", "notopic")
        self.assertEqual(p.returncode, EXIT_PROJECT)
        self.assertIn("no topic", p.stderr)

    def test_missing_config_file(self):
        p = self.push("-n", "washer", "-c", os.path.join(self.project.dir, "nope.ini"))
        self.assertEqual(p.returncode, EXIT_PROJECT)
        self.assertIn("nope.ini", p.stderr)

    def test_bad_usage(self):
        for args in ([], ["--all", "washer"], ["--timeout", "soon", "washer"],
                     ["--bogus-option", "washer"], ["--file", "x.bin", "washer", "dryer"],
                     ["--broker", "host:notaport", "washer"]):
            with self.subTest(args=args):
                p = self.push(*args)
                self.assertEqual(p.returncode, EXIT_USAGE, p.stderr)
                self.assertNotEqual(p.stderr, "")

    def test_help(self):
        p = self.push("--help", broker=False)
        self.assertEqual(p.returncode, 0)
        self.assertIn("Exit status", p.stdout)

    def test_all_resolves_every_environment_with_a_topic(self):
        # silent (nothing retained), bogus (invalid) and v6 (IPv6) make
        # --all fail with 3, after resolving and printing the others.
        p = self.push("-n", "--all", "--timeout", "1")
        self.assertEqual(p.returncode, 3, p.stderr)
        for env in ("washer", "dryer", "lamp"):
            self.assertIn("%s: topic=" % env, p.stdout)
        self.assertNotIn("v6: topic=", p.stdout)
        self.assertNotIn("notopic", p.stdout + p.stderr)

    def test_all_succeeds_when_every_environment_resolves(self):
        ini = os.path.join(self.project.dir, "two.ini")
        with open(ini, "w") as f:
            f.write("[env:washer]\ntopic = %s\n[env:lamp]\ntopic = %s\n[env:x]\nboard = y\n"
                    % (self.topic("washer"), self.topic("lamp")))
        p = self.push("-n", "--all", "-c", ini)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.strip().splitlines()), 2, p.stdout)
        self.assertIn("ip=192.168.1.50", p.stdout)
        self.assertIn("ip=172.16.0.1", p.stdout)

    def test_broker_from_environment(self):
        env = clean_env(NOFUSS_MQTT_BROKER="127.0.0.1:%d" % self.broker.port)
        p = self.push("-n", "washer", env=env, broker=False)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_broker_unreachable(self):
        p = self.push("-n", "--broker", "127.0.0.1:%d" % free_tcp_port(), "washer", broker=False)
        self.assertEqual(p.returncode, 3)
        self.assertIn("cannot connect", p.stderr)

    def test_broker_that_never_answers_times_out(self):
        # a listener nobody serves: TCP connects, no CONNACK ever comes
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(4)
            p = self.push("-n", "--timeout", "1", "--broker",
                          "127.0.0.1:%d" % silent.getsockname()[1], "washer", broker=False)
        self.assertEqual(p.returncode, 3)
        self.assertIn("no answer within the timeout", p.stderr)
        self.assertLess(p.elapsed, 1 + 3)

    def test_without_dry_run_uploads(self):
        # a fake device on loopback: reads the invitation, refuses the image
        ini = os.path.join(self.project.dir, "loop.ini")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dev:
            dev.bind(("127.0.0.1", 0))
            dev.settimeout(10)
            with open(ini, "w") as f:
                f.write("[env:washer]\ntopic = %s\nupload_flags = --port %d\n"
                        % (self.topic("loop"), dev.getsockname()[1]))
            self.broker.publish(self.topic("loop"), "127.0.0.1")
            got = []

            def device():
                data, addr = dev.recvfrom(256)
                got.append(data)
                dev.sendto(b"ERR: ERROR[4]: Not Enough Space\n", addr)

            t = threading.Thread(target=device, daemon=True)
            t.start()
            p = self.push("-c", ini, "--wait", "1", "washer")
            t.join(10)
        self.assertEqual(p.returncode, 4, p.stdout + p.stderr)
        self.assertRegex(got[0].decode(), r"^0 \d+ %d [0-9a-f]{32}\n$"
                         % self.project.sizes["washer"])
        self.assertIn("upload failed", p.stdout)
        self.assertIn("Not Enough Space", p.stdout)

    def test_no_upload_when_one_environment_fails(self):
        p = self.push("washer", "nosuch")
        self.assertEqual(p.returncode, EXIT_PROJECT, p.stderr)
        self.assertNotIn("upload", p.stdout + p.stderr)


class PushPasswordBrokerTest(PushTestBase):
    users = {"deploy": "s3cret"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.broker.publish(cls.topic(cls, "washer"), "192.168.1.51", "deploy", "s3cret")

    def test_right_password(self):
        p = self.push("-n", "--user", "deploy", "--password", "s3cret", "washer")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(" ip=192.168.1.51 ", p.stdout)

    def test_password_from_environment(self):
        env = clean_env(NOFUSS_MQTT_USER="deploy", NOFUSS_MQTT_PASSWORD="s3cret")
        p = self.push("-n", "washer", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_wrong_password_fails_clearly(self):
        p = self.push("-n", "--timeout", "3", "-u", "deploy", "-P", "wrong", "washer")
        self.assertEqual(p.returncode, 3)
        self.assertIn("refused", p.stderr)
        self.assertLess(p.elapsed, 3 + 3)

    def test_anonymous_refused(self):
        p = self.push("-n", "--timeout", "3", "washer")
        self.assertEqual(p.returncode, 3)
        self.assertIn("refused", p.stderr)


if __name__ == "__main__":
    unittest.main()
