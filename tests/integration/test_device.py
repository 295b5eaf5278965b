"""The simulated device (`nofuss device`) against the real nofussd on
loopback: a device goes from 0.1.0 to 0.1.1 (filesystem, then firmware),
reboots into the new slot and reports the new version, in the header form and
the path form; a firmware that crashes at boot is reverted by the bootloader;
and the command line of `nofuss device`, `mkimage` and `info`.

Also the helpers the other test_device_*.py files import: finding the
`nofuss` binary, making images, running a device, reading a flash directory
with an independent parser of the image format (docs/SIMULATOR.md)."""
import hashlib
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import unittest

from harness import NOFUSSD, SOURCE, DataDir, Server, get, read_text

NOFUSS = os.environ.get("NOFUSS", os.path.join(SOURCE, "build", "tools", "nofuss"))
RUN_TIMEOUT = 120.0  # one device run, reboots included; every run is far shorter
DEVICE = "TEST"
MAC = "5C:CF:7F:8B:6B:26"
FW_SIZE = "64K"   # images in tests: small, so that hundreds of runs stay fast
FS_SIZE = "32K"
POWER_CUT_EXIT = 6
BOOT_RX = re.compile(r"^\[boot\] slot=([ab]) version=(\S+) fs=(\S+) device=(\S+) mode=(\w+)$")
HALT_RX = re.compile(r"^\[sim\] halt: (\d+) checks, (\d+) boots, (\d+) flash operations$")


def sanitizer_env(env=None):
    """env with sanitizer reports made unmistakable: ASan's and UBSan's
    default exit status (1) is also "the last check failed"."""
    env = dict(os.environ if env is None else env)
    for name, code in (("ASAN_OPTIONS", 99), ("UBSAN_OPTIONS", 98)):
        opts = env.get(name, "")
        if "exitcode" not in opts:
            env[name] = (opts + ":" if opts else "") + "exitcode=%d" % code
    return env


def nofuss(*args, timeout=RUN_TIMEOUT, env=None):
    if not os.path.exists(NOFUSS):
        raise AssertionError("no nofuss binary at %s: build it or set NOFUSS" % NOFUSS)
    env = sanitizer_env(env)
    return subprocess.run([NOFUSS] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=env)


def mkimage(path, version, *extra, size=FW_SIZE, device=DEVICE):
    args = ["mkimage", "--version", version, "-o", path, "--size", size] + list(extra)
    if device and "--fs" not in extra:
        args += ["--device", device]
    r = nofuss(*args)
    assert r.returncode == 0, r.stderr
    with open(path, "rb") as f:
        return f.read()


def image_bytes(tmp, version, *extra, size=None):
    """An image's bytes, made by nofuss mkimage in the folder tmp."""
    fs = "--fs" in extra
    path = os.path.join(tmp, "img-%s-%d.bin" % (version, len(os.listdir(tmp))))
    return mkimage(path, version, *extra, size=size or (FS_SIZE if fs else FW_SIZE))


def parse_image(data):
    """(kind, version, flags) of a whole image, or None: an independent
    reading of the format in docs/SIMULATOR.md, not the C code's."""
    if len(data) < 128:
        return None
    if data[0] == 0xE9:
        kind, meta = "firmware", data[16:112]
        if meta[:8] != b"NOFUSSv1" or data[1] != 1:
            return None
        if struct.unpack_from("<II", data, 8) != (0x40100000, 96):
            return None
        check = 0xEF
        for b in meta:
            check ^= b
        if data[127] != check:
            return None
    elif data[:8] == b"NOFUSSFS":
        kind, meta = "filesystem", data[:96]
    else:
        return None
    flags, size = struct.unpack_from("<II", meta, 8)
    # After the image, a signature trailer may follow (docs/SIGNING.md):
    # signature, then its length (le32).
    tail = data[size:]
    if tail and (len(tail) <= 4 or struct.unpack("<I", tail[-4:])[0] != len(tail) - 4
                 or len(tail) - 4 > 512):
        return None
    if size > len(data) or hashlib.md5(data[128:size]).digest() != meta[80:96]:
        return None
    return kind, meta[16:48].split(b"\0")[0].decode(), flags


def read_state(flash):
    """The bootloader state file as a dict (strictly the documented lines)."""
    text = read_text(os.path.join(flash, "state"))
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) == 8, text
    keys = ["nofuss-flash", "active", "trial", "attempts", "slot-size", "fs-size", "chip-size"]
    state = {}
    for key, line in zip(keys, lines):
        k, _, v = line.partition(" ")
        assert k == key, text
        state[k] = v
    return state


def flash_view(flash):
    """What a flash directory holds: state, each slot's and the filesystem's
    (kind, version, flags) or None when missing/broken, the .new leftovers."""
    view = {"state": read_state(flash), "new": sorted(n for n in os.listdir(flash)
                                                      if n.endswith(".new"))}
    for name in ("slot-a.bin", "slot-b.bin", "fs.bin"):
        path = os.path.join(flash, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                view[name] = parse_image(f.read())
        else:
            view[name] = None
    return view


def flash_digest(flash):
    """Every file of a flash directory and its MD5: "unchanged" means equal."""
    out = {}
    for name in sorted(os.listdir(flash)):
        with open(os.path.join(flash, name), "rb") as f:
            out[name] = hashlib.md5(f.read()).hexdigest()
    return out


class Run:
    """One `nofuss device` process, reboots included."""

    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.lines = proc.stdout.splitlines()
        self.boots = [BOOT_RX.match(l).groups() for l in self.lines if BOOT_RX.match(l)]
        halt = [HALT_RX.match(l) for l in self.lines if HALT_RX.match(l)]
        self.halt = tuple(int(x) for x in halt[-1].groups()) if halt else None

    def messages(self):
        """The NoFUSS messages by name, in order, with "reboot" marks."""
        out = []
        for l in self.lines:
            m = re.match(r"^\[nofuss\] ([A-Z_]+)(:|$)", l)
            if m:
                out.append(m.group(1))
            elif l == "[sim] rebooting":
                out.append("reboot")
        return out

    def __str__(self):
        return "exit %s\n--- stdout\n%s--- stderr\n%s" % (self.rc, self.out, self.err)


class Device:
    """A simulated device with its flash in a folder; runs it on demand."""

    def __init__(self, flash, server_url=None):
        self.flash = flash
        self.url = server_url

    def run(self, *args, power_cut_at=None, timeout=RUN_TIMEOUT):
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOFUSS_SIM_RESUME", "NOFUSS_POWER_CUT_AT")}
        if power_cut_at is not None:
            env["NOFUSS_POWER_CUT_AT"] = str(power_cut_at)
        base = ["device", "--flash", self.flash, "--mac", MAC, "--interval", "0.05",
                "--timeout", "10", "--connect-timeout", "5"]
        if self.url is not None:
            base += ["--server", self.url]
        return Run(nofuss(*(base + list(args)), timeout=timeout, env=env))


def provision(flash, version="0.1.0"):
    """A flash directory holding firmware and filesystem `version`."""
    r = Device(flash).run("--device", DEVICE, "--version", version, "--max-checks", "0")
    assert r.rc == 0 and r.boots == [("a", version, version, DEVICE, "normal")], str(r)
    return flash


def wait_log(server, pattern, count=1, timeout=10.0):
    """The check log's lines once `count` of them match pattern (nofussd
    flushes the log at least once a second)."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        lines = read_text(server.check_log).splitlines() if os.path.exists(server.check_log) else []
        hits = [l for l in lines if rx.search(l)]
        if len(hits) >= count:
            return hits
        if time.monotonic() > deadline:
            raise AssertionError("check log has no %d lines matching %r:\n%s"
                                 % (count, pattern, "\n".join(lines)))
        time.sleep(0.05)


class DeviceTest(unittest.TestCase):
    """Base: a data dir, a nofussd, a temp folder, all cleaned up."""

    rules = []
    # Rules change by SIGHUP, not inotify: deterministic (nofussd logs
    # "listening" before its inotify watch is in place).
    server_args = ("--no-watch",)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nofuss-dev-")
        self.data = DataDir(self.rules)
        self.server = None

    def start(self, *args):
        self.server = Server(self.data, *(tuple(self.server_args) + args))
        # nofussd logs "listening" before its event loop blocks SIGHUP; an
        # answer (MHD runs in the loop) shows the loop is up. No check is logged.
        self.assertEqual(get(self.server.port, "/nofuss-test-ready").status, 404)
        return self.server

    def set_rules(self, rules):
        """New rules, in force when this returns."""
        seen = self.server.line_count()
        self.data.write_rules(rules)
        self.server.signal(signal.SIGHUP)
        self.server.wait_for(r"reloaded .*: %d rules" % len(rules), start=seen)

    def url(self, base="/"):
        return "http://127.0.0.1:%d%s" % (self.server.port, base)

    def tearDown(self):
        try:
            if self.server is not None:
                self.assertEqual(self.server.stop(), 0, self.server.stderr())
        finally:
            self.data.cleanup()
            shutil.rmtree(self.tmp, ignore_errors=True)


UPDATE_RULES = [{"origin": {"device": DEVICE, "max": "0.1.0"},
                 "target": {"version": "0.1.1", "firmware": "/firmware/test-0.1.1.bin",
                            "spiffs": "/firmware/test-0.1.1-fs.bin"}}]


class EndToEndTest(DeviceTest):
    rules = UPDATE_RULES

    def setUp(self):
        super().setUp()
        self.data.add_file("firmware/test-0.1.1.bin", image_bytes(self.tmp, "0.1.1"))
        self.data.add_file("firmware/test-0.1.1-fs.bin", image_bytes(self.tmp, "0.1.1", "--fs"))
        self.flash = provision(os.path.join(self.tmp, "flash"))

    def assert_updated(self, r, *args):
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(r.boots, [("a", "0.1.0", "0.1.0", DEVICE, "normal"),
                                   ("b", "0.1.1", "0.1.1", DEVICE, "trial")], str(r))
        self.assertEqual(r.messages(), ["START", "UPDATING", "FILESYSTEM_UPDATED",
                                        "FIRMWARE_UPDATED", "RESET", "reboot",
                                        "START", "UPTODATE", "END"], str(r))
        self.assertIn("[nofuss] UPDATING: 0.1.0 -> 0.1.1", r.lines)
        self.assertIn("[boot] slot b confirmed", r.lines)
        self.assertIn("[nofuss] START: checking %s as TEST 0.1.1" % self.device.url, r.lines)
        self.assertEqual(r.halt[:2], (2, 2))
        view = flash_view(self.flash)
        self.assertEqual(view["state"]["active"], "b")
        self.assertEqual(view["state"]["trial"], "-")
        self.assertEqual(view["slot-a.bin"][:2], ("firmware", "0.1.0"))
        self.assertEqual(view["slot-b.bin"][:2], ("firmware", "0.1.1"))
        self.assertEqual(view["fs.bin"][:2], ("filesystem", "0.1.1"))
        self.assertEqual(view["new"], [])
        # Then it is up to date, and stays on its new slot across a power-on.
        r = self.device.run("--once", *args)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(r.boots, [("b", "0.1.1", "0.1.1", DEVICE, "normal")])
        self.assertEqual(r.messages(), ["START", "UPTODATE", "END"])

    def test_header_form(self):
        self.start()
        self.device = Device(self.flash, self.url())
        self.assert_updated(self.device.run("--until-up-to-date", "--max-checks", "3",
                                            "--build", "7"), "--build", "7")
        lines = wait_log(self.server, r"DEVICE: TEST", count=3)
        self.assertRegex(lines[0], r"IP: 127\.0\.0\.1 MAC: %s DEVICE: TEST VERSION: 0\.1\.0 "
                                   r"BUILD: 7 UPDATE: 0\.1\.1$" % MAC)
        self.assertRegex(lines[1], r"DEVICE: TEST VERSION: 0\.1\.1 BUILD: 7 UPDATE: none$")
        self.assertRegex(lines[2], r"DEVICE: TEST VERSION: 0\.1\.1 BUILD: 7 UPDATE: none$")

    def test_path_form_under_a_base(self):
        self.start("--base", "/nofuss")
        self.device = Device(self.flash, self.url("/nofuss"))
        self.assert_updated(self.device.run("--path-form", "--until-up-to-date",
                                            "--max-checks", "3"), "--path-form")
        lines = wait_log(self.server, r"device:TEST", count=3)
        self.assertRegex(lines[0], r"from:127\.0\.0\.1 device:TEST version:0\.1\.0 update:0\.1\.1$")
        self.assertRegex(lines[1], r"device:TEST version:0\.1\.1 update:none$")
        self.assertRegex(lines[2], r"device:TEST version:0\.1\.1 update:none$")

    def test_interval_and_max_checks(self):
        self.start()
        self.set_rules([])
        self.device = Device(self.flash, self.url())
        started = time.monotonic()
        r = self.device.run("--max-checks", "3", "--interval", "0.2", "--jitter", "0.1")
        took = time.monotonic() - started
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(r.messages(), ["START", "UPTODATE", "END"] * 3)
        self.assertGreaterEqual(took, 0.4)
        self.assertEqual(r.halt[:2], (3, 1))


class CrashAtBootTest(DeviceTest):
    """The rules offer a firmware that crashes at boot: it is flashed, tried
    once, reverted, and the next check reports the old version."""
    rules = [{"origin": {"device": DEVICE, "max": "0.1.0"},
              "target": {"version": "0.1.1", "firmware": "/firmware/crash.bin"}}]

    def test_crash_then_revert(self):
        self.data.add_file("firmware/crash.bin", image_bytes(self.tmp, "0.1.1", "--crash"))
        flash = provision(os.path.join(self.tmp, "flash"))
        self.start()
        device = Device(flash, self.url())
        r = device.run("--max-checks", "2", "--max-boots", "4")
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(r.boots[:3], [("a", "0.1.0", "0.1.0", DEVICE, "normal"),
                                       ("b", "0.1.1", "0.1.0", DEVICE, "trial"),
                                       ("a", "0.1.0", "0.1.0", DEVICE, "reverted")], str(r))
        self.assertIn("[boot] Fatal exception 0(IllegalInstructionCause): firmware 0.1.1 "
                      "crashed at boot (simulated)", r.lines)
        self.assertIn("[boot] slot b did not confirm its trial boot: booting slot a", r.lines)
        # The check after the fallback reports the version it really runs.
        self.assertIn("[nofuss] START: checking %s as TEST 0.1.0" % device.url,
                      r.lines[r.lines.index("[boot] reset reason: exception"):])
        lines = wait_log(self.server, r"DEVICE: TEST", count=2)
        for line in lines:
            self.assertRegex(line, r"VERSION: 0\.1\.0 BUILD:  UPDATE: 0\.1\.1$")
        view = flash_view(flash)
        self.assertEqual((view["state"]["active"], view["state"]["trial"]), ("a", "-"))
        self.assertEqual(view["slot-b.bin"], ("firmware", "0.1.1", 1))

        # A good 0.1.1 then goes through.
        self.data.add_file("firmware/good.bin", image_bytes(self.tmp, "0.1.1"))
        self.set_rules([{"origin": {"device": DEVICE, "max": "0.1.0"},
                         "target": {"version": "0.1.1", "firmware": "/firmware/good.bin"}}])
        r = device.run("--until-up-to-date", "--max-checks", "3")
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(r.boots[-1], ("b", "0.1.1", "0.1.0", DEVICE, "trial"))
        self.assertEqual(r.messages()[-3:], ["START", "UPTODATE", "END"])

    def test_boot_loop_is_bounded(self):
        """A confirmed firmware that crashes (provisioned so) has nothing to
        fall back to: the simulator gives up after --max-boots."""
        crash = os.path.join(self.tmp, "crash.bin")
        mkimage(crash, "0.1.0", "--crash")
        device = Device(os.path.join(self.tmp, "flash"))
        r = device.run("--image", crash, "--max-checks", "0", "--max-boots", "3")
        self.assertEqual(r.rc, 5, str(r))
        self.assertEqual(len(r.boots), 3)
        self.assertIn("[sim] 3 boots without a check: boot loop, giving up", r.lines)


COMMANDS = ("device", "mkimage", "info", "fleet", "push", "ota-send", "ota-recv", "keygen", "pubkey",
            "sign", "verify", "devices", "explain", "release", "rollout")


def help_exit_table(text):
    """`nofuss --help`'s exit status table: {command: [(code, meaning)]}."""
    table, cmd = {}, None
    for line in text.split("Exit status", 1)[1].splitlines()[1:]:
        m = re.match(r"^  (\S+) +(\d)  (.*)$", line)
        if m:
            cmd = m.group(1)
            table[cmd] = [[int(m.group(2)), m.group(3)]]
            continue
        m = re.match(r"^ +(\d)  (.*)$", line)
        if m:
            table[cmd].append([int(m.group(1)), m.group(2)])
        elif line.strip():
            table[cmd][-1][1] += " " + line.strip()
    return {c: [tuple(row) for row in rows] for c, rows in table.items()}


def command_exit_rows(text):
    """A command's --help exit status rows: [(code, meaning)]."""
    rows = []
    for line in text.split("\nExit status:\n", 1)[1].splitlines():
        m = re.match(r"^  (\d)  (.*)$", line)
        if m:
            rows.append([int(m.group(1)), m.group(2)])
        elif line.strip():
            rows[-1][1] += " " + line.strip()
    return [tuple(row) for row in rows]


def man_exit_table(roff):
    """The man page's EXIT STATUS: {".B" heading: [(code, meaning)]}."""
    section = roff.split(".SH EXIT STATUS\n", 1)[1].split("\n.SH ", 1)[0]
    table = {}
    for entry in section.split(".TP\n")[1:]:
        head, _, body = entry.partition("\n")
        rows = [" ".join(r.split()) for r in body.replace("\\-", "-").split(".br\n")]
        table[head[len(".B "):].replace("\\-", "-")] = [
            (int(r.split(" ", 1)[0]), r.split(" ", 1)[1]) for r in rows if r]
    return table


class CommandLineTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nofuss-cli-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_help(self):
        r = nofuss("--help")
        self.assertEqual(r.returncode, 0)
        for word in ("device", "mkimage", "info", "Exit status"):
            self.assertIn(word, r.stdout)
        self.assertRegex(nofuss("--version").stdout, r"^nofuss \d+\.\d+\.\d+\n$")
        for cmd, words in (("device", ("--flash", "--server", "--once", "--max-checks",
                                       "--power-cut-at", "NOFUSS_POWER_CUT_AT", "Exit status")),
                           ("mkimage", ("--version", "--size", "--fs", "--crash", "-o",
                                        "Exit status")),
                           ("info", ("FILE", "Exit status"))):
            r = nofuss(cmd, "--help")
            self.assertEqual(r.returncode, 0, cmd)
            for word in words:
                self.assertIn(word, r.stdout, cmd)

    def test_exit_status_is_one_table(self):
        """The exit statuses: `nofuss --help`'s table, each command's
        --help, and the man page's EXIT STATUS hold the same rows, and bad
        usage is 2 for every command."""
        table = help_exit_table(nofuss("--help").stdout)
        usage = table.pop("any")
        self.assertEqual([code for code, _ in usage], [2])
        self.assertEqual(sorted(table), sorted(COMMANDS))
        for cmd in COMMANDS:
            with self.subTest(cmd=cmd):
                rows = sorted(table[cmd] + usage)
                r = nofuss(cmd, "--help")
                self.assertEqual(r.returncode, 0)
                self.assertEqual(command_exit_rows(r.stdout), rows)
                self.assertNotIn(2, [code for code, _ in table[cmd]])
                r = nofuss(cmd, "--no-such-option")
                self.assertEqual(r.returncode, 2, r.stderr)
        with open(os.path.join(SOURCE, "docs", "man", "nofuss.1")) as f:
            man = man_exit_table(f.read())
        self.assertEqual(man.pop("any command"), usage)
        self.assertEqual(man, {"nofuss " + cmd: rows for cmd, rows in table.items()})

    def test_man_pages_name_every_option(self):
        """Every long option a command's --help lists is in that command's
        section of nofuss(1), every NOFUSS_ variable in ENVIRONMENT, and
        every option of nofussd --help in nofussd(8)."""
        with open(os.path.join(SOURCE, "docs", "man", "nofuss.1")) as f:
            man = f.read().replace("\\-", "-")
        sections = dict(re.findall(r'^\.SS "nofuss ([a-z-]+)"\n(.*?)(?=^\.S[SH] )', man,
                                   re.M | re.S))
        environment = man[man.index(".SH ENVIRONMENT"):man.index(".SH FILES")]
        self.assertEqual(sorted(sections), sorted(COMMANDS))
        option = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")
        for cmd in COMMANDS:
            with self.subTest(cmd=cmd):
                text = nofuss(cmd, "--help").stdout
                missing = sorted(o for o in set(option.findall(text)) - {"help"}
                                 if "--" + o not in sections[cmd])
                self.assertEqual(missing, [], "options missing from nofuss(1)")
                self.assertEqual([v for v in re.findall(r"NOFUSS_[A-Z_]+", text)
                                  if v not in environment], [])
        with open(os.path.join(SOURCE, "docs", "man", "nofussd.8")) as f:
            man8 = f.read().replace("\\-", "-")
        text = subprocess.run([NOFUSSD, "--help"], capture_output=True, text=True,
                              timeout=20).stdout
        self.assertIn("--store", text)
        self.assertEqual(sorted(o for o in set(option.findall(text)) - {"help"}
                                if "--" + o not in man8), [])

    def test_bad_usage_exit_2(self):
        flash = os.path.join(self.tmp, "flash")
        cases = [
            ([], "COMMAND"),
            (["nosuch"], "unknown command"),
            (["device"], "--flash"),
            (["device", "--flash", flash], "--server"),
            (["device", "--flash", flash, "--max-checks", "0"], "--version and --device"),
            (["device", "--flash", flash, "-s", "http://x/", "--interval", "soon"], "--interval"),
            (["device", "--flash", flash, "-s", "http://x/", "--max-checks", "-1"],
             "--max-checks"),
            (["device", "--flash", flash, "-s", "http://x/", "--mac", "5C:CF"], "--mac"),
            (["device", "--flash", flash, "--max-checks", "0", "--slot-size", "1G"],
             "--slot-size"),
            (["device", "--flash", flash, "-s", "http://x/", "--power-cut-at", "x"],
             "--power-cut-at"),
            (["mkimage", "-o", os.path.join(self.tmp, "x.bin")], "--version"),
            (["mkimage", "--version", "1.0", "-o", os.path.join(self.tmp, "x.bin"),
              "--size", "100"], "--size"),
            (["mkimage", "--version", "1 0", "-o", os.path.join(self.tmp, "x.bin")], "version"),
            (["mkimage", "--version", "1.0", "-o", os.path.join(self.tmp, "x.bin"),
              "--flash-size", "3M"], "--flash-size"),
            (["mkimage", "--version", "1.0", "-o", os.path.join(self.tmp, "x.bin"),
              "--fs", "--crash"], "--crash"),
            (["info"], "no file"),
        ]
        for args, word in cases:
            r = nofuss(*args)
            self.assertEqual(r.returncode, 2, "%s\n%s" % (args, r.stderr))
            self.assertIn(word, r.stderr, args)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x.bin")))
        env = dict(os.environ, NOFUSS_POWER_CUT_AT="soon")
        r = nofuss("device", "--flash", flash, "--max-checks", "0", env=env)
        self.assertEqual(r.returncode, 2)
        self.assertIn("NOFUSS_POWER_CUT_AT", r.stderr)

    def test_mkimage_and_info(self):
        fw = os.path.join(self.tmp, "fw.bin")
        data = mkimage(fw, "1.2.3-rc1", "--flash-size", "4M", "--flash-mode", "qio",
                       size="300K")
        self.assertEqual(len(data), 300 * 1024)
        self.assertEqual(data[0], 0xE9)
        self.assertEqual(data[1], 1)      # one segment
        self.assertEqual(data[2], 0)      # QIO
        self.assertEqual(data[3], 0x40)   # 4 MB, 40 MHz
        self.assertEqual(parse_image(data), ("firmware", "1.2.3-rc1", 0))
        fs = os.path.join(self.tmp, "fs.bin")
        self.assertEqual(parse_image(mkimage(fs, "7", "--fs", size="4096")),
                         ("filesystem", "7", 0))
        crash = os.path.join(self.tmp, "crash.bin")
        self.assertEqual(parse_image(mkimage(crash, "9", "--crash", size="1M")),
                         ("firmware", "9", 1))
        r = nofuss("info", fw, fs, crash)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "%s: firmware version=1.2.3-rc1 device=TEST size=307200 md5=%s"
                         % (fw, hashlib.md5(data).hexdigest()))
        self.assertRegex(lines[1], r": filesystem version=7 device=- size=4096 md5=")
        self.assertTrue(lines[2].endswith(" crash"))
        # A torn image is caught.
        with open(fw, "r+b") as f:
            f.truncate(300 * 1024 - 1)
        r = nofuss("info", fw)
        self.assertEqual(r.returncode, 1)
        self.assertIn("invalid", r.stdout)

    def test_bricked_exit_4(self):
        flash = provision(os.path.join(self.tmp, "flash"))
        with open(os.path.join(flash, "slot-a.bin"), "r+b") as f:
            f.seek(5000)
            f.write(b"\0")
        r = Device(flash).run("--max-checks", "0")
        self.assertEqual(r.rc, 4, str(r))
        self.assertIn("no bootable firmware", r.out)

    def test_corrupt_state_exit_3(self):
        flash = provision(os.path.join(self.tmp, "flash"))
        with open(os.path.join(flash, "state"), "w") as f:
            f.write("nofuss-flash 1\nactive c\n")
        r = Device(flash).run("--max-checks", "0")
        self.assertEqual(r.rc, 3, str(r))
        self.assertIn("not a valid flash state file", r.err)


if __name__ == "__main__":
    unittest.main()
