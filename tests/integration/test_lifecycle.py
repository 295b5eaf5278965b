"""nofussd's life: command line, --check, refusing bad rules at start,
reloading on change and SIGHUP, keeping old rules when a new file is bad,
log reopening on SIGUSR1, and graceful shutdown with a grace period."""
import os
import re
import signal
import socket
import subprocess
import time
import unittest

from harness import (NOFUSSD, DataDir, Server, ServerTest, check_headers, connect, esp_image,
                     get, read_response, read_text, wait_until)

GOOD = [{"origin": {"device": "D", "max": "1.0"},
         "target": {"version": "1.1", "firmware": "/fw/d-1.1.bin"}}]
BIG = esp_image("big", 32 * 1024 * 1024)  # more than loopback buffers hold


def run(*args, timeout=20):
    return subprocess.run([NOFUSSD] + list(args), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


class CommandLineTest(unittest.TestCase):
    def setUp(self):
        self.data = DataDir(GOOD, {"fw/d-1.1.bin": esp_image("d", 1000)})

    def tearDown(self):
        self.data.cleanup()

    def check(self, rules):
        self.data.write_rules(rules)
        return run("-d", self.data.path, "--check")

    def test_help_and_version(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for word in ("--data-dir", "--check", "--base", "--check-log", "--idle-timeout",
                     "SIGHUP", "Exit status"):
            self.assertIn(word, r.stdout)
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^nofussd \d+\.\d+\.\d+\n$")

    def test_bad_usage_exit_2(self):
        self.assertEqual(run("--no-such-flag").returncode, 2)
        r = run("--port", "70000")
        self.assertEqual(r.returncode, 2)
        self.assertIn("port", r.stderr)
        self.assertEqual(run("stray").returncode, 2)

    def test_check_ok(self):
        r = run("-d", self.data.path, "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1 rules, ok", r.stdout)

    def test_check_syntax_error_names_line_and_column(self):
        r = self.check('[\n  {"origin": {"device": "D"},\n   "target": {"version": "1"}\n  ,\n]\n')
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"versions\.json:5:1: ")

    def test_check_rule_errors_name_rule_and_field(self):
        cases = [
            ([{"origin": {}, "target": {"version": "1"}}], "rule 1: origin.device: missing"),
            ([GOOD[0], {"origin": {"device": "X"}}], "rule 2: target: missing"),
            ([{"origin": {"device": "X", "min": [1]}, "target": {"version": "1"}}],
             "rule 1: origin.min: must be a string"),
            ({"origin": {}}, "must be an array of rules"),
        ]
        for rules, message in cases:
            r = self.check(rules)
            self.assertEqual(r.returncode, 1, message)
            self.assertIn(message, r.stderr)
            self.assertIn(self.data.rules_path, r.stderr)

    def test_check_legacy_patterns_warn(self):
        # What the original PHP server answered loads, with a warning naming the
        # rule and the field (these three were refusals before).
        r = self.check([GOOD[0],
                        {"origin": {"device": "X", "mni": "1", "mac": 5},
                         "target": {"firmware": "/fw/d-1.1.bin"}}])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2 rules, ok", r.stdout)
        for message in ("rule 2: origin.mni: unknown key ignored",
                        "rule 2: origin.mac is a number: read as \"5\"",
                        "rule 2: target has no version: answered as it is"):
            self.assertIn("warning: %s: %s" % (self.data.rules_path, message), r.stderr)

    def test_missing_image_is_a_warning(self):
        r = self.check([{"origin": {"device": "X"},
                         "target": {"version": "1", "firmware": "/fw/nope.bin"}}])
        self.assertEqual(r.returncode, 0)
        self.assertIn("warning", r.stderr)
        self.assertIn("nope.bin: no such file", r.stderr)

    def test_refuses_to_start_on_invalid_rules(self):
        self.data.write_rules("[{")
        r = run("-d", self.data.path, "-l", "127.0.0.1", "-p", "0")
        self.assertEqual(r.returncode, 1)
        self.assertIn("versions.json:1:", r.stderr)

    def test_missing_data_dir(self):
        r = run("-d", self.data.path + "/nope", "-l", "127.0.0.1", "-p", "0")
        self.assertEqual(r.returncode, 3)
        self.assertIn("public", r.stderr)

    def test_port_in_use_exit_3(self):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        try:
            r = run("-d", self.data.path, "-l", "127.0.0.1", "-p", str(blocker.getsockname()[1]))
            self.assertEqual(r.returncode, 3)
            self.assertIn("cannot listen", r.stderr)
        finally:
            blocker.close()

    def test_config_file(self):
        conf = os.path.join(self.data.path, "nofussd.conf")
        with open(conf, "w") as f:
            f.write("[nofussd]\ndata-dir = %s\nbase = /ota\n" % self.data.path)
        server = Server(self.data, "-c", conf)
        try:
            self.assertEqual(get(server.port, "/ota/D/1.0").json()["version"], "1.1")
            self.assertEqual(get(server.port, "/D/1.0").status, 404)
        finally:
            self.assertEqual(server.stop(), 0)
        with open(conf, "w") as f:
            f.write("[nofussd]\nport = 80\nbogus = 1\n")
        r = run("-c", conf, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("nofussd.conf:3: unknown setting \"bogus\"", r.stderr)

    def test_shipped_config_file(self):
        # dist/nofussd.conf is valid as shipped, and names every setting
        # CONFIGURATION.md documents (set, or commented out).
        top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        conf = os.path.join(top, "dist", "nofussd.conf")
        r = run("-c", conf, "--check", "-d", self.data.path, "--store", "off")
        self.assertEqual(r.returncode, 0, r.stderr)
        shipped = set(re.findall(r"^;?\s*([a-z-]+) =", read_text(conf), re.M))
        documented = set(re.findall(r"^\| (?:`-\w`, )?`--[a-z-]+(?: [A-Z.-]+)?` \| `([a-z-]+)",
                                    read_text(os.path.join(top, "docs", "CONFIGURATION.md")),
                                    re.M))
        self.assertGreater(len(documented), 30)
        self.assertEqual(documented - shipped, set())

    def test_start_line(self):
        server = Server(self.data)
        try:
            line = server.wait_for("listening")
            self.assertRegex(line, r"listening on 127\.0\.0\.1:\d+/, 1 rules from .*versions\.json")
        finally:
            server.stop()


class ReloadTest(ServerTest):
    rules = GOOD
    files = {"fw/d-1.1.bin": esp_image("d", 1000)}

    def reloads(self):
        return sum(1 for l in self.server.stderr().splitlines() if "reload" in l)

    def wait_reload(self, before, word):
        wait_until(lambda: self.reloads() > before)
        last = [l for l in self.server.stderr().splitlines() if "reload" in l][-1]
        self.assertIn(word, last)
        return last

    def test_reload_on_change_atomic_and_in_place(self):
        self.start()
        port = self.server.port
        n = self.reloads()
        self.data.write_rules([{"origin": {"device": "D"}, "target": {"version": "2.0"}}])
        self.wait_reload(n, "reloaded")
        self.assertEqual(get(port, "/D/1.0").json()["version"], "2.0")
        n = self.reloads()
        self.data.write_rules([{"origin": {"device": "D"}, "target": {"version": "3.0"}}],
                              atomic=False)
        self.wait_reload(n, "reloaded")
        self.assertEqual(get(port, "/D/1.0").json()["version"], "3.0")

    def test_invalid_new_file_keeps_old_rules(self):
        self.start()
        port = self.server.port
        n = self.reloads()
        self.data.write_rules('[{"origin": {"device": "D"}}]')
        line = self.wait_reload(n, "reload failed")
        self.assertIn("still serving the previous 1 rules", line)
        self.assertIn("rule 1: target: missing", line)
        self.assertEqual(get(port, "/D/1.0").json()["version"], "1.1")
        os.remove(self.data.rules_path)
        self.server.signal(signal.SIGHUP)
        self.wait_reload(n + 1, "reload failed")
        self.assertEqual(get(port, "/D/1.0").json()["version"], "1.1")

    def test_legacy_file_served_as_the_original_did(self):
        # An empty target (refused before) answers {}; a target without version
        # (refused before) is sent as it is, logged with an empty update.
        self.start()
        port = self.server.port
        n = self.reloads()
        self.data.write_rules([
            {"origin": {"device": "D", "max": "0.5"}, "target": {}},
            {"origin": {"device": "D", "min": "", "build_not": "*", "mac": None},
             "target": {"firmware": "/fw/d-1.1.bin"}}])
        self.wait_reload(n, "reloaded")
        self.assertEqual(get(port, "/D/0.5").body, b"{}")
        self.assertEqual(get(port, "/D/1.0").body, b'{"firmware":"/fw/d-1.1.bin","spiffs":""}')
        r = get(port, "/", check_headers("5C:CF:7F:8B:6B:26", "D", "1.0", ""))
        self.assertEqual(r.body, b'{"firmware":"/fw/d-1.1.bin","spiffs":""}')
        log = wait_until(lambda: "DEVICE: D VERSION: 1.0" in read_text(self.server.check_log)
                         and read_text(self.server.check_log))
        self.assertIn(" device:D version:0.5 update:none\n", log)
        self.assertIn(" device:D version:1.0 update:\n", log)
        self.assertIn(" DEVICE: D VERSION: 1.0 BUILD:  UPDATE: \n", log)

    def test_sighup_without_watch(self):
        self.start("--no-watch")
        port = self.server.port
        self.data.write_rules([{"origin": {"device": "D"}, "target": {"version": "5.0"}}])
        time.sleep(0.5)
        self.assertEqual(get(port, "/D/1.0").json()["version"], "1.1", "no watch: no reload")
        n = self.reloads()
        self.server.signal(signal.SIGHUP)
        self.wait_reload(n, "reloaded")
        self.assertEqual(get(port, "/D/1.0").json()["version"], "5.0")

    def test_swapped_public_folder_served_after_sighup(self):
        self.start()
        port = self.server.port
        new = os.path.join(self.data.path, "public.new")
        os.makedirs(os.path.join(new, "fw"))
        with open(os.path.join(new, "fw", "only-new.bin"), "wb") as f:
            f.write(b"\xe9new")
        self.assertEqual(get(port, "/fw/only-new.bin").status, 404)
        os.rename(self.data.public, self.data.public + ".old")
        os.rename(new, self.data.public)
        n = self.reloads()
        self.server.signal(signal.SIGHUP)
        self.wait_reload(n, "reloaded")
        self.assertEqual(get(port, "/fw/only-new.bin").body, b"\xe9new")

    def test_sigusr1_reopens_check_log(self):
        self.start()
        log = self.server.check_log
        get(self.server.port, "/D/1.0")
        self.assertTrue(wait_until(lambda: "device:D version:1.0" in read_text(log)))
        os.rename(log, log + ".1")
        self.server.signal(signal.SIGUSR1)
        self.assertTrue(wait_until(lambda: os.path.exists(log)))
        get(self.server.port, "/D/0.5")
        self.assertTrue(wait_until(lambda: "device:D version:0.5" in read_text(log)))
        self.assertNotIn("version:0.5", read_text(log + ".1"))


class CheckLogSinkTest(ServerTest):
    """nofussd -d ... | (a reader that stalls): checks go on being answered;
    the lines that do not fit are dropped, counted, and reported once the
    reader is back."""

    CHECKS = 30000  # more lines than the pipe and the log's buffers hold

    def setUp(self):
        self.data = DataDir(GOOD, {"fw/d-1.1.bin": esp_image("d", 1000)})
        self.server = Server(self.data, check_log="-")

    def test_stalled_stdout_never_stops_checks(self):
        # stdout is a pipe nobody reads yet; keep-alive, to be quick
        with connect(self.server.port, timeout=3) as s:
            for i in range(self.CHECKS):
                s.sendall(("GET /D/0.%d HTTP/1.1\r\nHost: x\r\n\r\n" % i).encode())
                self.assertEqual(read_response(s, timeout=3).status, 200)
        out = b""
        fd = self.server.proc.stdout.fileno()
        os.set_blocking(fd, False)
        deadline = time.monotonic() + 20
        dropped = None
        while time.monotonic() < deadline:
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                chunk = b""
            out += chunk
            if dropped is None:
                for line in self.server.stderr().splitlines():
                    m = re.search(r"check log -: writing again; (\d+) lines were dropped", line)
                    if m:
                        dropped = int(m.group(1))
            if dropped is not None and out.count(b"\n") + dropped >= self.CHECKS:
                break
            if not chunk:
                time.sleep(0.05)
        self.assertIsNotNone(dropped, self.server.stderr())
        self.assertGreater(dropped, 0)
        lines = out.decode().splitlines()
        self.assertEqual(len(lines) + dropped, self.CHECKS)
        for line in lines:  # every line written is whole
            self.assertRegex(line, r"^\[[0-9/: ]+\] from:127\.0\.0\.1 device:D "
                                   r"version:0\.\d+ update:(1\.1|none)$")


class ShutdownTest(ServerTest):
    rules = GOOD
    files = {"fw/big.bin": BIG}

    def slow_download(self, port):
        s = connect(port)
        s.sendall(b"GET /fw/big.bin HTTP/1.0\r\n\r\n")
        self.first = s.recv(1024)  # the download has begun
        return s

    def read_all(self, s, timeout=20):
        # A list, not bytes +=: 32 MiB in 64 KiB reads copied again on
        # every read took longer than the grace period on a loaded machine.
        s.settimeout(timeout)
        chunks = []
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def test_in_flight_download_finishes_within_grace(self):
        self.start("--grace", "20")
        port = self.server.port
        s = self.slow_download(port)
        time.sleep(0.3)
        self.server.signal(signal.SIGTERM)
        self.server.wait_for("no new connections")
        # New connections are refused while the download drains.
        with self.assertRaises(OSError):
            with connect(port, timeout=2) as c:
                c.sendall(b"GET /D/1.0 HTTP/1.0\r\n\r\n")
                read_response(c, timeout=2)
        data = self.first + self.read_all(s)
        s.close()
        self.assertTrue(data.endswith(BIG[-1000:]))
        self.assertEqual(len(data.split(b"\r\n\r\n", 1)[1]), len(BIG))
        self.assertEqual(self.server.proc.wait(10), 0)

    def test_grace_period_is_bounded(self):
        self.start("--grace", "1")
        s = self.slow_download(self.server.port)
        t0 = time.monotonic()
        self.server.signal(signal.SIGTERM)
        self.assertEqual(self.server.proc.wait(10), 0)
        self.assertLess(time.monotonic() - t0, 5)
        self.server.reader.join(5)  # all of stderr read
        self.assertIn("grace period over", self.server.stderr())
        s.close()


if __name__ == "__main__":
    unittest.main()
