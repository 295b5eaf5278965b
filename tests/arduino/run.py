"""The library's example sketch, built natively on the ESP8266 Arduino core's
host emulation (run.sh), updated over the air by the real nofussd.

This script plays the rest of the device: its flash (a file of 4 MB, plus a
4 KB page standing for the RTC memory where the Updater leaves eboot's
command), and its boot: an emulated eboot that carries out a pending copy
command as the real one does, then starts the firmware at address 0. A
firmware image here is a gzip of the host executable of a sketch build
(gzip, 0x1F 0x8B, is an image the ESP8266 Updater and the core both accept,
and real eboot unpacks it too); booting unpacks it and runs it, with the
flash file and the image's size (ESP.getSketchSize()) in its environment.
The filesystem region is 0x300000-0x3FA000 (emulation.patch's layout).

Between the device and nofussd sits the proxy of the integration tests
(tests/integration/test_device_faults.py), on the port the sketch was built
with. Checks, each on a freshly provisioned device at 0.0.9:
  1. an update: check, filesystem, firmware, reset; the next boot runs 0.1.0,
     whose check finds it up to date;
  2. the firmware transfer cut at 50%: resumed (Range, If-Range, 206) and
     completed, each byte fetched once;
  3. a wrong x-MD5: refused, nothing committed, the old sketch boots;
  4. an image larger than the free sketch space: refused before the flash is
     touched (the flash file is byte for byte unchanged).
Prints what it checks; exits 1 at the first failure.
"""
import argparse
import hashlib
import gzip
import os
import signal
import struct
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

FLASH_SIZE = 4 * 1024 * 1024
RTC_SIZE = 4096
FS_START = 0x300000
FS_END = 0x3FA000
EBOOT_MAGIC = 0xEB001000
ACTION_COPY_RAW = 1
RUN_TIMEOUT = 60.0  # one boot of the sketch: a check, and an update at most
DEVICE = "TEST"


def fail(text):
    print("FAIL: " + text)
    sys.exit(1)


def check(ok, text, detail=""):
    if not ok:
        fail(text + ("\n" + detail if detail else ""))
    print("ok: " + text)


def image(executable):
    """A firmware image: the stripped executable, gzipped (fixed mtime)."""
    stripped = executable + ".stripped"
    subprocess.run(["strip", "-o", stripped, executable], check=True)
    with open(stripped, "rb") as f:
        return gzip.compress(f.read(), 9, mtime=0)


class Device:
    """A flash file, and the emulated eboot that boots what it holds."""

    def __init__(self, work, name, firmware, fs):
        self.work = work
        self.flash = os.path.join(work, name + ".flash")
        self.boots = 0
        data = bytearray(b"\xff" * (FLASH_SIZE + RTC_SIZE))
        data[0:len(firmware)] = firmware
        data[FS_START:FS_START + len(fs)] = fs
        with open(self.flash, "wb") as f:
            f.write(data)

    def read(self, offset, size):
        with open(self.flash, "rb") as f:
            f.seek(offset)
            return f.read(size)

    def command(self):
        """The pending eboot command (action, src, dst, size), or None."""
        magic, action, src, dst, size = struct.unpack("<5I", self.read(FLASH_SIZE, 20))
        return (action, src, dst, size) if magic & 0xFFFFF000 == EBOOT_MAGIC else None

    def eboot(self):
        """What eboot does at power-on: a pending copy, then the command cleared."""
        cmd = self.command()
        if cmd is None:
            return None
        action, src, dst, size = cmd
        if action != ACTION_COPY_RAW:
            fail("eboot command with action %#x" % action)
        with open(self.flash, "r+b") as f:
            f.seek(src)
            data = f.read(size)
            f.seek(dst)
            f.write(data)
            f.seek(FLASH_SIZE)
            f.write(b"\xff" * RTC_SIZE)
        return cmd

    def sketch(self):
        """The firmware at address 0: (executable bytes, image size)."""
        d = zlib.decompressobj(31)
        raw = self.read(0, FS_START)
        exe = d.decompress(raw)
        if not d.eof:
            fail("no whole gzip image at flash address 0")
        return exe, len(raw) - len(d.unused_data)

    def boot(self):
        """Powers the device on: eboot, then the sketch until it restarts or
        ends its check. Returns (lines, copied command, restarted)."""
        copied = self.eboot()
        exe, size = self.sketch()
        self.boots += 1
        path = os.path.join(self.work, "boot-%d.exe" % self.boots)
        with open(path, "wb") as f:
            f.write(exe)
        os.chmod(path, 0o755)
        env = dict(os.environ, ESP8266_FLASH=self.flash, ESP8266_SKETCH_SIZE=str(size))
        proc = subprocess.Popen([path, "-b", "-S", "0", "-L", "0"], cwd=self.work, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        lines, restarted = [], False
        deadline = time.monotonic() + RUN_TIMEOUT
        os.set_blocking(proc.stdout.fileno(), False)
        buf = b""
        while True:
            chunk = proc.stdout.read()
            if chunk:
                buf += chunk
                *done, buf = buf.split(b"\n")
                for raw in done:
                    line = raw.decode(errors="replace").rstrip("\r")
                    print("   | " + line)
                    lines.append(line)
            if "[NoFUSS] End" in lines:
                proc.terminate()
                proc.wait(10)
                break
            if proc.poll() is not None and not chunk:
                restarted = proc.returncode == 0 and "[NoFUSS] Resetting board" in lines
                break
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait(10)
                fail("the sketch neither restarted nor ended its check in %ds" % RUN_TIMEOUT)
            time.sleep(0.01)
        os.unlink(path)
        return lines, copied, restarted


def messages(lines):
    return [l for l in lines if l.startswith("[NoFUSS]")]


def banner(lines):
    """The sketch's [MAIN] lines: device and version."""
    return [l for l in lines if l.startswith("[MAIN]")]


class Run:
    def __init__(self, args):
        os.environ["NOFUSSD"] = args.nofussd
        from harness import DataDir, Server
        from test_device_faults import Proxy
        self.work = args.work
        self.old_fw = image(args.old)
        self.new_fw = image(args.new)
        self.old_fs = (b"nofuss-fs 0.0.9\n" * 4096)[:64 * 1024]
        self.new_fs = (b"nofuss-fs 0.1.0\n" * 6144)[:96 * 1024]
        self.data = DataDir([{"origin": {"device": DEVICE, "max": "0.0.9"},
                              "target": {"version": "0.1.0",
                                         "firmware": "/firmware/basic-0.1.0.bin",
                                         "spiffs": "/firmware/fs-0.1.0.bin"}}])
        self.data.add_file("firmware/basic-0.1.0.bin", self.new_fw)
        self.data.add_file("firmware/fs-0.1.0.bin", self.new_fs)
        # The proxy first: on the port the sketch was built with, before
        # nofussd takes a free port that could be that one.
        self.proxy = Proxy(0, args.port)
        self.server = Server(self.data, "--no-watch")
        self.proxy.upstream = self.server.port
        self.devices = 0

    def close(self):
        self.proxy.close()
        self.server.stop()
        self.data.cleanup()

    def rules(self, firmware, spiffs=""):
        seen = self.server.line_count()
        self.data.write_rules([{"origin": {"device": DEVICE, "max": "0.0.9"},
                                "target": {"version": "0.1.0", "firmware": firmware,
                                           "spiffs": spiffs}}])
        self.server.signal(signal.SIGHUP)
        self.server.wait_for(r"reloaded .*: 1 rules", start=seen)

    def device(self):
        self.devices += 1
        return Device(self.work, "device-%d" % self.devices, self.old_fw, self.old_fs)

    def update(self, title):
        """A device at 0.0.9 updated to 0.1.0; returns the update's lines."""
        dev = self.device()
        lines, copied, restarted = dev.boot()
        check(banner(lines) == ["[MAIN] Device: TEST", "[MAIN] Version: 0.0.9"],
              title + ": the device boots 0.0.9", "\n".join(lines))
        check(messages(lines) == [
            "[NoFUSS] Start",
            "[NoFUSS] Updating to 0.1.0 (firmware: /firmware/basic-0.1.0.bin, "
            "filesystem: /firmware/fs-0.1.0.bin)",
            "[NoFUSS] File System Updated", "[NoFUSS] Firmware Updated",
            "[NoFUSS] Resetting board"] and restarted,
            title + ": check, filesystem, firmware, reset (ESP.restart)", "\n".join(lines))
        check(dev.read(FS_START, len(self.new_fs)) == self.new_fs,
              title + ": the filesystem region holds the new image (U_FS, in place)")
        cmd = dev.command()
        check(cmd is not None and cmd[0] == ACTION_COPY_RAW and cmd[2] == 0 and
              cmd[3] == len(self.new_fw) and
              dev.read(cmd[1], cmd[3]) == self.new_fw,
              title + ": the Updater staged the firmware and left eboot its copy command "
              "(%s)" % (cmd,))
        lines, copied, restarted = dev.boot()
        check(copied is not None, title + ": eboot copied the new firmware at the next boot")
        check(banner(lines) == ["[MAIN] Device: TEST", "[MAIN] Version: 0.1.0"],
              title + ": the next boot reports the new version", "\n".join(lines))
        check(messages(lines) == ["[NoFUSS] Start", "[NoFUSS] Nothing for me", "[NoFUSS] End"],
              title + ": and is up to date", "\n".join(lines))
        return lines

    def refused(self, title, expect):
        """A device at 0.0.9 whose firmware update fails with the message
        `expect`; returns the device and the flash before the run."""
        dev = self.device()
        with open(dev.flash, "rb") as f:
            before = f.read()
        lines, copied, restarted = dev.boot()
        check(messages(lines) == [
            "[NoFUSS] Start", messages(lines)[1] if len(messages(lines)) > 1 else "",
            "[NoFUSS] Firmware Update Error: " + expect, "[NoFUSS] End"] and not restarted,
            title + ": FIRMWARE_UPDATE_ERROR (%s), END, no restart" % expect, "\n".join(lines))
        check(dev.command() is None, title + ": no eboot command left")
        check(dev.read(0, len(self.old_fw)) == self.old_fw,
              title + ": the running sketch is untouched")
        lines, _, _ = dev.boot()
        check(banner(lines) == ["[MAIN] Device: TEST", "[MAIN] Version: 0.0.9"],
              title + ": the next boot runs 0.0.9 and may try again")
        return dev, before

    def run(self):
        print("== 1. an update, end to end")
        self.update("update")
        exchanges = [x for x in self.proxy.log if x.header("x-ESP8266-mode")]
        check([x.header("x-ESP8266-mode") for x in exchanges] == ["spiffs", "sketch"] and
              all(x.header("User-Agent") == "ESP8266-http-Update" for x in exchanges),
              "images fetched as the HTTP updater does (User-Agent, x-ESP8266-mode)")
        check(exchanges[1].header("x-ESP8266-sketch-md5") ==
              hashlib.md5(self.old_fw).hexdigest(),
              "x-ESP8266-sketch-md5 is the MD5 of the running image")
        checks = [x for x in self.proxy.log if x.head.startswith(b"GET / ")]
        check(checks and checks[0].header("User-Agent") == "NoFussClient" and
              checks[0].header("X-ESP8266-DEVICE") == DEVICE and
              checks[0].header("X-ESP8266-VERSION") == "0.0.9" and
              checks[0].header("X-ESP8266-MAC") == "DE:BA:7A:B1:E0:42" and
              checks[0].header("X-ESP8266-CHIPID") is not None,
              "the check is the original client's header form",
              checks[0].head.decode() if checks else "no check")

        print("== 2. the firmware transfer cut at 50%")
        self.proxy.log.clear()
        self.proxy.once = True
        self.proxy.fault = ("sketch", "cut", 50)
        self.update("cut at 50%")
        sketch = [x for x in self.proxy.log if x.header("x-ESP8266-mode") == "sketch"]
        size = len(self.new_fw)
        check(len(sketch) == 2 and sketch[0].sent == size // 2 and
              sketch[1].header("Range") == "bytes=%d-" % (size // 2) and
              sketch[1].header("If-Range") == sketch[0].header("ETag", "response") and
              sketch[1].status() == 206,
              "the device asked for the rest (Range: bytes=%d-, If-Range: the ETag), got 206"
              % (size // 2), "\n".join(x.head.decode() for x in sketch))
        check(sum(x.sent for x in sketch) == size,
              "%d + %d bytes: the image fetched once, fewer than two downloads (%d)"
              % (sketch[0].sent, sketch[1].sent if len(sketch) > 1 else 0, 2 * size))

        print("== 3. a wrong x-MD5")
        self.rules("/firmware/basic-0.1.0.bin")
        self.proxy.once = False
        self.proxy.fault = ("sketch", "md5", hashlib.md5(b"another image").hexdigest())
        self.refused("wrong x-MD5", "image MD5 differs from x-MD5")
        self.proxy.fault = None

        print("== 4. an image that does not fit")
        big = b"\x1f\x8b" + bytes((i * 7 + 3) & 0xFF for i in range(FS_START - 2))
        self.data.add_file("firmware/big.bin", big)
        self.rules("/firmware/big.bin")
        dev, before = self.refused("too big", "image too big for the flash: Not Enough Space")
        with open(dev.flash, "rb") as f:
            check(f.read() == before, "too big: the flash is byte for byte as it was")
        print("PASS")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nofussd", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--old", required=True)
    parser.add_argument("--new", required=True)
    args = parser.parse_args()
    run = Run(args)
    try:
        run.run()
    finally:
        run.close()


if __name__ == "__main__":
    main()
