"""Faults on the way from nofussd to the simulated device: a small proxy on
loopback between them cuts the image transfer at 0%, 10%, ... 90%, resets
the connection, rewrites x-MD5, drops x-MD5 and flips a byte of the image
(which only the port's own check of the image can catch), or sends one
byte less than Content-Length;
the rules point at a firmware not starting with 0xE9, at one too big for the
slot, at one whose header asks for a bigger flash chip. Each time the device
must not commit anything (its flash directory is byte for byte unchanged)
and must boot its old version; then, with the proxy healthy or the rules
fixed, the same update must go through. A cut or truncated image is resumed
by the device (Range + If-Range, nofussd's ETag) and cut again each time,
until the device gives up after its resumes (NF_CLIENT_RESUME_MAX).

The proxy also serves test_device_resume.py: it logs every exchange and can
fire a fault once only."""
import os
import shutil
import socket
import struct
import threading
import unittest

from harness import md5
from test_device import (DEVICE, DeviceTest, Device, flash_digest, flash_view, image_bytes,
                         provision)

IO_TIMEOUT = 10.0
HEAD_MAX = 65536
BODY_MAX = 8 * 1024 * 1024
PERCENTS = range(0, 100, 10)
RESUMES = 3  # NF_CLIENT_RESUME_MAX: the resumed requests of one image before it fails

FW_ONLY = [{"origin": {"device": DEVICE, "max": "0.1.0"},
            "target": {"version": "0.1.1", "firmware": "/firmware/test-0.1.1.bin"}}]
FS_AND_FW = [{"origin": {"device": DEVICE, "max": "0.1.0"},
              "target": {"version": "0.1.1", "firmware": "/firmware/test-0.1.1.bin",
                         "spiffs": "/firmware/test-0.1.1-fs.bin"}}]


def recv_head(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the head")
        buf += chunk
        if len(buf) > HEAD_MAX:
            raise ConnectionError("head too long")
    return buf.split(b"\r\n\r\n", 1)


class Exchange:
    """One request through the proxy: its head (bytes, without the blank
    line), the answer's head as nofussd sent it, and how many body bytes
    went on to the device."""

    def __init__(self, head, rhead, sent):
        self.head, self.rhead, self.sent = head, rhead, sent

    def header(self, name, which="request"):
        head = self.head if which == "request" else self.rhead
        for line in head.split(b"\r\n")[1:]:
            n, _, v = line.partition(b":")
            if n.strip().lower() == name.lower().encode():
                return v.strip().decode()
        return None

    def status(self):
        return int(self.rhead.split(b" ", 2)[1])


class Proxy:
    """Forwards each request to nofussd, reads the whole answer, and - when
    a fault is set and the request is an image download of the kind named
    (x-ESP8266-mode: sketch or spiffs) - breaks it on the way back. With
    `once` the fault is cleared when it fires, and `after_fault` (if set) is
    called then. Every exchange is appended to `log`. It listens on `port`
    (0: any free one, in .port)."""

    def __init__(self, upstream_port, port=0):
        self.upstream = upstream_port
        self.fault = None  # (mode, action, arg)
        self.faults_done = 0
        self.once = False
        self.after_fault = None
        self.log = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a given port may be in TIME_WAIT
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        try:
            conn.settimeout(IO_TIMEOUT)
            head, rest = recv_head(conn)
            with socket.create_connection(("127.0.0.1", self.upstream), IO_TIMEOUT) as up:
                up.sendall(head + b"\r\n\r\n" + rest)
                rhead, body = recv_head(up)
                length = None
                for line in rhead.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while length is not None and len(body) < min(length, BODY_MAX):
                    chunk = up.recv(65536)
                    if not chunk:
                        break
                    body += chunk
            mode = None
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"x-esp8266-mode":
                    mode = value.strip().decode()
            with self.lock:
                fault = self.fault if self.fault and self.fault[0] == mode else None
                if fault:
                    self.faults_done += 1
                    if self.once:
                        self.fault = None
            sent = self._answer(conn, rhead, body, fault)
            with self.lock:
                self.log.append(Exchange(head, rhead, sent))
            if fault and self.after_fault:
                self.after_fault()
        except (OSError, ValueError):
            pass
        finally:
            conn.close()

    def _answer(self, conn, rhead, body, fault):
        """Sends the answer, broken by fault; returns the body bytes sent."""
        if fault is None:
            conn.sendall(rhead + b"\r\n\r\n" + body)
            return len(body)
        _, action, arg = fault
        if action == "nomd5-flip":  # no x-MD5, and byte `arg` of the body flipped
            lines = [l for l in rhead.split(b"\r\n") if not l.lower().startswith(b"x-md5:")]
            body = body[:arg] + bytes([body[arg] ^ 0xFF]) + body[arg + 1:]
            conn.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            return len(body)
        if action == "md5":
            lines = [l if not l.lower().startswith(b"x-md5:") else b"x-MD5: " + arg.encode()
                     for l in rhead.split(b"\r\n")]
            conn.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            return len(body)
        if action in ("cut", "reset"):
            body = body[:len(body) * arg // 100]
        elif action == "truncate":
            body = body[:-arg]
        conn.sendall(rhead + b"\r\n\r\n" + body)
        if action == "reset":  # RST instead of FIN
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return len(body)

    def close(self):
        self.sock.close()


class FaultTest(DeviceTest):
    rules = FS_AND_FW

    def setUp(self):
        super().setUp()
        self.fw = image_bytes(self.tmp, "0.1.1")
        self.data.add_file("firmware/test-0.1.1.bin", self.fw)
        self.data.add_file("firmware/test-0.1.1-fs.bin", image_bytes(self.tmp, "0.1.1", "--fs"))
        self.template = provision(os.path.join(self.tmp, "template"))
        self.start()
        self.proxy = Proxy(self.server.port)
        self.addCleanup(self.proxy.close)
        self.runs = 0

    def fresh(self):
        self.runs += 1
        flash = os.path.join(self.tmp, "flash-%d" % self.runs)
        shutil.copytree(self.template, flash)
        return Device(flash, "http://127.0.0.1:%d/" % self.proxy.port)

    def assert_untouched(self, device, before, r, message, error):
        """The failed run committed nothing and the device boots 0.1.0."""
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("[nofuss] %s: %s" % (message, error), r.out)
        self.assertNotIn("RESET", r.messages())
        self.assertEqual(flash_digest(device.flash), before, str(r))
        boot = device.run("--max-checks", "0")
        self.assertEqual(boot.rc, 0, str(boot))
        self.assertEqual(boot.boots, [("a", "0.1.0", "0.1.0", DEVICE, "normal")], str(boot))

    def assert_updates(self, device, fs="0.1.1"):
        r = device.run("--until-up-to-date", "--max-checks", "3")
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(r.boots[-1], ("b", "0.1.1", fs, DEVICE, "trial"), str(r))
        self.assertEqual(r.messages()[-3:], ["START", "UPTODATE", "END"])
        view = flash_view(device.flash)
        self.assertEqual(view["state"]["active"], "b")
        self.assertEqual(view["slot-b.bin"][:2], ("firmware", "0.1.1"))
        self.assertEqual(view["new"], [])

    def faulty_run(self, fault, message, error, rules=None):
        if rules is not None:
            self.set_rules(rules)
        device = self.fresh()
        before = flash_digest(device.flash)
        done = self.proxy.faults_done
        self.proxy.fault = fault
        r = self.last_run = device.run("--once")
        self.proxy.fault = None
        # A transfer that stops short is resumed, and broken again each time.
        tries = 1 if fault[1] in ("md5", "nomd5-flip") else 1 + RESUMES
        self.assertEqual(self.proxy.faults_done, done + tries, str(r))
        self.assert_untouched(device, before, r, message, error)
        return device

    def test_firmware_cut_at_every_tenth(self):
        self.set_rules(FW_ONLY)
        for pct in PERCENTS:
            with self.subTest(pct=pct):
                device = self.faulty_run(("sketch", "cut", pct), "FIRMWARE_UPDATE_ERROR",
                                         "connection failed or was cut")
                self.assert_updates(device, fs="0.1.0")

    def test_filesystem_cut_at_every_tenth(self):
        for pct in PERCENTS:
            with self.subTest(pct=pct):
                device = self.faulty_run(("spiffs", "cut", pct), "FILESYSTEM_UPDATE_ERROR",
                                         "connection failed or was cut")
                self.assert_updates(device)

    def test_connection_reset(self):
        device = self.faulty_run(("sketch", "reset", 50), "FIRMWARE_UPDATE_ERROR",
                                 "connection failed or was cut", rules=FW_ONLY)
        self.assert_updates(device, fs="0.1.0")

    def test_wrong_md5(self):
        device = self.faulty_run(("sketch", "md5", md5(b"not the image")),
                                 "FIRMWARE_UPDATE_ERROR", "image MD5 differs from x-MD5",
                                 rules=FW_ONLY)
        self.assert_updates(device, fs="0.1.0")
        device = self.faulty_run(("spiffs", "md5", "0123"), "FILESYSTEM_UPDATE_ERROR",
                                 "x-MD5 is not 32 hex characters", rules=FS_AND_FW)
        self.assert_updates(device)

    def test_corrupt_image_without_md5(self):
        # No x-MD5 to compare with: the port checks the payload MD5 the
        # image's own metadata carries before it commits anything. The
        # filesystem has no second copy: without that check it would be
        # committed and the device would boot with fs=invalid.
        flip = 20000  # in the payload (after the 128-byte header)
        for mode, message, rules in (("spiffs", "FILESYSTEM_UPDATE_ERROR", FS_AND_FW),
                                     ("sketch", "FIRMWARE_UPDATE_ERROR", FW_ONLY)):
            with self.subTest(mode=mode):
                device = self.faulty_run((mode, "nomd5-flip", flip), message,
                                         "flash write failed", rules=rules)
                self.assertIn("payload MD5 mismatch", self.last_run.out)
                self.assert_updates(device, fs="0.1.1" if mode == "spiffs" else "0.1.0")

    def test_truncated(self):
        device = self.faulty_run(("sketch", "truncate", 1), "FIRMWARE_UPDATE_ERROR",
                                 "connection failed or was cut", rules=FW_ONLY)
        self.assert_updates(device, fs="0.1.0")

    def rules_for(self, name):
        return [{"origin": {"device": DEVICE, "max": "0.1.0"},
                 "target": {"version": "0.1.1", "firmware": "/firmware/" + name}}]

    def test_bad_images_in_the_rules(self):
        # Not starting with 0xE9; then too big for the 1 MiB slot; then a header
        # asking for a 16 MB chip on a 4 MB one. The last is offered to the
        # path form only: a header-form check reports its chip size
        # (X-ESP8266-CHIPSIZE), and nofussd never offers it an image built for
        # a bigger flash (docs/PROTOCOL.md section 5.4).
        self.data.add_file("firmware/bad.bin", b"\0" + self.fw[1:])
        self.data.add_file("firmware/big.bin", image_bytes(self.tmp, "0.1.1", size="1040K"))
        self.data.add_file("firmware/16m.bin",
                           image_bytes(self.tmp, "0.1.1", "--flash-size", "16M"))
        for name, error in (("bad.bin", "firmware does not start with 0xE9 or 0x1F"),
                            ("big.bin", "image too big for the flash"),
                            ("16m.bin", "flash write failed")):
            with self.subTest(image=name):
                self.set_rules(self.rules_for(name))
                device = self.fresh()
                before = flash_digest(device.flash)
                if name == "16m.bin":
                    r = device.run("--once")
                    self.assertEqual(r.rc, 0, str(r))
                    self.assertEqual(r.messages(), ["START", "UPTODATE", "END"], str(r))
                    self.assertEqual(flash_digest(device.flash), before, str(r))
                    r = device.run("--once", "--path-form")
                else:
                    r = device.run("--once")
                self.assert_untouched(device, before, r, "FIRMWARE_UPDATE_ERROR", error)
                # The rules fixed: the update goes through.
                self.set_rules(FW_ONLY)
                self.assert_updates(device, fs="0.1.0")


if __name__ == "__main__":
    unittest.main()
