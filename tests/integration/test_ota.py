"""ArduinoOTA pushes (docs/PEERS.md section 7) on loopback: `nofuss ota-send`
against `nofuss ota-recv` (happy path into a file, a firmware into a flash
directory that then holds it on trial, wrong password, an image too big,
a transfer cut midway), a fake espota.py host written here from the
protocol text against ota-recv, and a fake ArduinoOTA device against
ota-send whose acks run together and arrive split. Hostile devices against
ota-send: an "OK" before the whole image was acknowledged is not success,
a device that dribbles acks is stopped by the push's deadline, an empty
answer and a cut transfer are reported in plain words. Loopback addresses
only; the receivers pause 50 ms instead of the device's 1 s."""
import hashlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOFUSS = os.environ.get("NOFUSS", os.path.join(SOURCE, "build", "tools", "nofuss"))
DEVICE_IP = "127.0.0.2"
CHUNK = 1460
PAUSE = "0.05"
WAIT = 20.0  # one process; every run here is far shorter

# ota-send's exit status
SEND_OK, SEND_NO_ANSWER, SEND_AUTH, SEND_DEVICE_ERR, SEND_CUT, SEND_FINAL = 0, 3, 4, 5, 7, 8
SEND_PROTOCOL = 9
# ota-recv's
RECV_OK, RECV_FAILED, RECV_AUTH = 0, 1, 4


def md5hex(data):
    return hashlib.md5(data).hexdigest()


def firmware_bytes(size):
    return b"\xe9" + os.urandom(size - 1)


class Receiver:
    """`nofuss ota-recv` on DEVICE_IP, a free port."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [NOFUSS, "ota-recv", "--listen", DEVICE_IP + ":0", "--pause", PAUSE,
             "--timeout", "3", "--wait", "15"] + list(args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        while line.startswith("[boot]"):
            line = self.proc.stdout.readline()
        m = re.match(r"listening on [\d.]+:(\d+)$", line.strip())
        if not m:
            self.proc.kill()
            raise AssertionError("ota-recv did not start: %r %s" % (line, self.proc.stderr.read()))
        self.port = int(m.group(1))

    def finish(self):
        out, err = self.proc.communicate(timeout=WAIT)
        return self.proc.returncode, out, err


def send(port, path, *args):
    p = subprocess.run([NOFUSS, "ota-send", "--ip", DEVICE_IP, "--port", str(port), "-q",
                        "--timeout", "3"] + list(args) + [path],
                       capture_output=True, text=True, timeout=WAIT)
    return p.returncode, p.stdout, p.stderr


class OtaTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nofuss-ota-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)
        return self.path(name)

    # ---- nofuss against nofuss ----

    def test_happy_path_file(self):
        data = firmware_bytes(100 * 1024 + 7)
        img = self.write("fw.bin", data)
        r = Receiver("-o", self.path("out.bin"))
        rc, out, err = send(r.port, img)
        self.assertEqual(rc, SEND_OK, err)
        self.assertIn("answered OK", out)
        rrc, rout, rerr = r.finish()
        self.assertEqual(rrc, RECV_OK, rerr)
        with open(self.path("out.bin"), "rb") as f:
            self.assertEqual(f.read(), data)

    def test_filesystem_with_password(self):
        data = os.urandom(5000)  # a filesystem needs no magic byte
        img = self.write("fs.bin", data)
        r = Receiver("-o", self.path("out.bin"), "--auth", "s3cret")
        rc, out, err = send(r.port, img, "--fs", "--auth", "s3cret")
        self.assertEqual(rc, SEND_OK, err)
        self.assertEqual(r.finish()[0], RECV_OK)
        with open(self.path("out.bin"), "rb") as f:
            self.assertEqual(f.read(), data)

    def test_firmware_into_flash_dir(self):
        flash = self.path("flash")
        subprocess.run([NOFUSS, "device", "--flash", flash, "--version", "0.1.0", "--device",
                        "TEST", "--max-checks", "0", "--server", "http://127.0.0.1:9/"],
                       check=True, capture_output=True, timeout=WAIT)
        img = self.path("fw2.bin")
        subprocess.run([NOFUSS, "mkimage", "--version", "0.2.0", "--device", "TEST", "-o", img,
                        "--size", "64K"], check=True, capture_output=True, timeout=WAIT)
        r = Receiver("--flash", flash)
        rc, out, err = send(r.port, img)
        self.assertEqual(rc, SEND_OK, err)
        rrc, rout, rerr = r.finish()
        self.assertEqual(rrc, RECV_OK, rerr + rout)
        with open(os.path.join(flash, "state")) as f:
            state = f.read()
        self.assertIn("trial b\n", state)
        info = subprocess.run([NOFUSS, "info", os.path.join(flash, "slot-b.bin")],
                              capture_output=True, text=True, timeout=WAIT)
        self.assertEqual(info.returncode, 0, info.stdout)
        self.assertIn("version=0.2.0", info.stdout)
        with open(img, "rb") as f, open(os.path.join(flash, "slot-b.bin"), "rb") as g:
            self.assertEqual(f.read(), g.read())
        # The device boots the new firmware on trial.
        boot = subprocess.run([NOFUSS, "device", "--flash", flash, "--max-checks", "0",
                               "--server", "http://127.0.0.1:9/"],
                              capture_output=True, text=True, timeout=WAIT)
        self.assertIn("slot=b version=0.2.0", boot.stdout)

    def test_bad_firmware_into_flash_dir_commits_nothing(self):
        flash = self.path("flash")
        subprocess.run([NOFUSS, "device", "--flash", flash, "--version", "0.1.0", "--device",
                        "TEST", "--max-checks", "0", "--server", "http://127.0.0.1:9/"],
                       check=True, capture_output=True, timeout=WAIT)
        before = sorted(os.listdir(flash))
        img = self.write("notfw.bin", b"\x00" * 4096)
        r = Receiver("--flash", flash)
        rc, out, err = send(r.port, img)
        self.assertEqual(rc, SEND_FINAL, err)
        self.assertIn("ERROR[10]", err)
        self.assertEqual(r.finish()[0], RECV_FAILED)
        self.assertEqual(sorted(os.listdir(flash)), before)

    def test_wrong_password(self):
        img = self.write("fw.bin", firmware_bytes(3000))
        r = Receiver("-o", self.path("out.bin"), "--auth", "right")
        rc, out, err = send(r.port, img, "--auth", "wrong")
        self.assertEqual(rc, SEND_AUTH, err)
        self.assertIn("Authentication Failed", err)
        self.assertEqual(r.finish()[0], RECV_AUTH)
        self.assertFalse(os.path.exists(self.path("out.bin")))

    def test_missing_password(self):
        img = self.write("fw.bin", firmware_bytes(3000))
        r = Receiver("-o", self.path("out.bin"), "--auth", "right", "--timeout", "0.5")
        rc, out, err = send(r.port, img)
        self.assertEqual(rc, SEND_AUTH, err)
        self.assertNotEqual(r.finish()[0], RECV_OK)
        self.assertFalse(os.path.exists(self.path("out.bin")))

    def test_malformed_auth_answer(self):
        data = firmware_bytes(2000)
        r = Receiver("-o", self.path("out.bin"), "--auth", "pw")
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.settimeout(5)
        udp.sendto(("0 1234 %d %s\n" % (len(data), md5hex(data))).encode(), (DEVICE_IP, r.port))
        self.assertTrue(re.match(rb"^AUTH [0-9a-f]{32}$", udp.recv(64)))
        udp.sendto(b"200 short answer\n", (DEVICE_IP, r.port))
        udp.settimeout(0.3)
        with self.assertRaises(socket.timeout):  # no answer, as ArduinoOTA
            udp.recv(64)
        udp.close()
        rrc, rout, rerr = r.finish()
        self.assertEqual(rrc, RECV_FAILED)
        self.assertIn("bad answer to the challenge", rerr)
        self.assertFalse(os.path.exists(self.path("out.bin")))

    def test_too_big(self):
        img = self.write("fw.bin", firmware_bytes(8192))
        r = Receiver("-o", self.path("out.bin"), "--max-size", "4K")
        rc, out, err = send(r.port, img)
        self.assertEqual(rc, SEND_DEVICE_ERR, err)
        self.assertIn("ERROR[4]: Not Enough Space", err)
        self.assertEqual(r.finish()[0], RECV_FAILED)
        self.assertFalse(os.path.exists(self.path("out.bin")))

    def test_cut_midway(self):
        img = self.write("fw.bin", firmware_bytes(50000))
        r = Receiver("-o", self.path("out.bin"), "--cut-after", "20000")
        rc, out, err = send(r.port, img)
        self.assertEqual(rc, SEND_CUT, err)
        self.assertIn("transfer cut: ", err)
        self.assertNotIn("transfer cut: transfer cut", err)
        rrc, rout, rerr = r.finish()
        self.assertEqual(rrc, RECV_FAILED)
        self.assertIn("cut", rerr)
        self.assertFalse(os.path.exists(self.path("out.bin")))

    def test_sender_killed_midway(self):
        flash = self.path("flash")
        subprocess.run([NOFUSS, "device", "--flash", flash, "--version", "0.1.0", "--device",
                        "TEST", "--max-checks", "0", "--server", "http://127.0.0.1:9/"],
                       check=True, capture_output=True, timeout=WAIT)
        before = sorted(os.listdir(flash))
        with open(os.path.join(flash, "state")) as f:
            state = f.read()
        r = Receiver("--flash", flash)
        # A fake host that stops after half the image and closes.
        data = firmware_bytes(64 * 1024)
        lsn = socket.socket()
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.settimeout(5)
        udp.sendto(("0 %d %d %s\n" % (lsn.getsockname()[1], len(data), md5hex(data))).encode(),
                   (DEVICE_IP, r.port))
        self.assertEqual(udp.recv(64), b"OK")
        lsn.settimeout(5)
        conn, _ = lsn.accept()
        conn.sendall(data[:30000])
        time.sleep(0.2)
        conn.close()
        lsn.close()
        udp.close()
        rrc, rout, rerr = r.finish()
        self.assertEqual(rrc, RECV_FAILED)
        self.assertIn("transfer cut", rerr)
        self.assertEqual(sorted(os.listdir(flash)), before)
        with open(os.path.join(flash, "state")) as f:
            self.assertEqual(f.read(), state)

    def test_no_device(self):
        img = self.write("fw.bin", firmware_bytes(3000))
        # A bound UDP port that never answers.
        quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        quiet.bind((DEVICE_IP, 0))
        try:
            p = subprocess.run([NOFUSS, "ota-send", "--ip", DEVICE_IP, "--port",
                                str(quiet.getsockname()[1]), "--timeout", "0.3", img],
                               capture_output=True, text=True, timeout=WAIT)
        finally:
            quiet.close()
        self.assertEqual(p.returncode, SEND_NO_ANSWER, p.stderr)

    # ---- a fake espota.py host against ota-recv ----

    def espota(self, port, data, filename, password=None, command=0):
        """The host's exact byte sequence (docs/PEERS.md section 7). Returns
        the final answer."""
        lsn = socket.socket()
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        lsn.settimeout(10)
        fmd5 = md5hex(data)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.settimeout(10)
        msg = "%d %d %d %s\n" % (command, lsn.getsockname()[1], len(data), fmd5)
        udp.sendto(msg.encode(), (DEVICE_IP, port))
        answer = udp.recv(37).decode()
        if answer.startswith("AUTH"):
            nonce = answer.split()[1]
            cnonce = md5hex(("%s%u%s%s" % (filename, len(data), fmd5, DEVICE_IP)).encode())
            result = md5hex(("%s:%s:%s" % (md5hex(password.encode()), nonce, cnonce)).encode())
            udp.sendto(("%d %s %s\n" % (200, cnonce, result)).encode(), (DEVICE_IP, port))
            answer = udp.recv(32).decode()
        self.assertEqual(answer, "OK")
        udp.close()
        conn, _ = lsn.accept()
        lsn.close()
        conn.settimeout(10)
        acks = b""
        for off in range(0, len(data), CHUNK):
            conn.sendall(data[off:off + CHUNK])
            acks += conn.recv(10)
        final = b""
        while not (final.rstrip(b"0123456789").startswith((b"O", b"E"))
                   and (b"OK" in final or final.endswith(b"\n"))):
            got = conn.recv(64)
            if not got:
                break
            final += got
        conn.close()
        return acks + final

    def test_fake_espota_host(self):
        data = firmware_bytes(20 * CHUNK + 321)
        r = Receiver("-o", self.path("out.bin"), "--auth", "pw")
        stream = self.espota(r.port, data, "firmware.bin", password="pw")
        self.assertTrue(stream.endswith(b"OK"), stream)
        digits = stream[:-2].decode()
        self.assertTrue(digits.isdigit(), digits)
        self.assertEqual(r.finish()[0], RECV_OK)
        with open(self.path("out.bin"), "rb") as f:
            self.assertEqual(f.read(), data)

    def test_fake_espota_host_bad_md5(self):
        data = firmware_bytes(3 * CHUNK)
        r = Receiver("-o", self.path("out.bin"))
        # Announce the MD5 of other bytes.
        lsn = socket.socket()
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        lsn.settimeout(10)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.settimeout(10)
        udp.sendto(("0 %d %d %s\n" % (lsn.getsockname()[1], len(data), md5hex(b"x"))).encode(),
                   (DEVICE_IP, r.port))
        self.assertEqual(udp.recv(37), b"OK")
        udp.close()
        conn, _ = lsn.accept()
        lsn.close()
        conn.settimeout(10)
        conn.sendall(data)
        stream = b""
        while not stream.endswith(b"\n"):
            got = conn.recv(64)
            if not got:
                break
            stream += got
        conn.close()
        self.assertTrue(stream.endswith(b"ERROR[7]: MD5 Failed\n"), stream)
        self.assertEqual(r.finish()[0], RECV_FAILED)
        self.assertFalse(os.path.exists(self.path("out.bin")))

    def test_ignores_bad_invitations(self):
        data = firmware_bytes(2000)
        r = Receiver("-o", self.path("out.bin"))
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.settimeout(0.3)
        for bad in (b"1 1234 2000 " + md5hex(data).encode() + b"\n",
                    b"0 1234 2000 " + md5hex(data)[:31].encode() + b"\n",
                    b"x" * 2000):
            udp.sendto(bad, (DEVICE_IP, r.port))
            with self.assertRaises(socket.timeout):
                udp.recv(64)
        udp.close()
        rc, out, err = send(r.port, self.write("fw.bin", data))
        self.assertEqual(rc, SEND_OK, err)
        self.assertEqual(r.finish()[0], RECV_OK)

    # ---- a fake ArduinoOTA device against ota-send ----

    def fake_device(self, password=None, final=b"OK", refuse=None):
        """Runs in a thread; returns (port, result dict)."""
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((DEVICE_IP, 0))
        udp.settimeout(10)
        res = {}

        def run():
            try:
                msg, host = udp.recvfrom(256)
                res["invite"] = msg
                cmd, port, size, fmd5 = msg.decode().split()
                size = int(size)
                if password is not None:
                    nonce = md5hex(os.urandom(8))
                    udp.sendto(("AUTH " + nonce).encode(), host)
                    ans, _ = udp.recvfrom(256)
                    _, cnonce, resp = ans.decode().split()
                    want = md5hex(("%s:%s:%s" % (md5hex(password.encode()), nonce,
                                                 cnonce)).encode())
                    if resp != want:
                        udp.sendto(b"Authentication Failed", host)
                        return
                if refuse is not None:
                    udp.sendto(b"ERR: " + refuse, host)
                    return
                udp.sendto(b"OK", host)
                conn = socket.create_connection((host[0], int(port)), timeout=10)
                got, owed, n = b"", b"", 0
                while len(got) < size:
                    piece = conn.recv(CHUNK)
                    if not piece:
                        break
                    got += piece
                    n += 1
                    ack = str(len(piece)).encode()
                    if len(piece) == CHUNK and n % 3 == 1:
                        # As two reads of 1000 and 460, each acked.
                        ack = b"1000460"
                    elif len(piece) == CHUNK and n % 3 == 2:
                        # Reads of 12 and 1448: digits that mislead a parser.
                        ack = b"121448"
                    if len(got) >= size:
                        owed += ack  # the last ack runs into the final answer
                        break
                    # Split each ack over two sends.
                    conn.sendall(ack[:1])
                    time.sleep(0.001)
                    conn.sendall(ack[1:])
                res["data"] = got
                time.sleep(0.05)
                conn.sendall(owed + final)
                time.sleep(0.05)
                conn.close()
            finally:
                udp.close()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        res["thread"] = t
        return udp.getsockname()[1], res

    def test_fake_device(self):
        data = firmware_bytes(30 * CHUNK + 77)
        img = self.write("fw.bin", data)
        port, res = self.fake_device(password="pw")
        rc, out, err = send(port, img, "--auth", "pw")
        res["thread"].join(WAIT)
        self.assertEqual(rc, SEND_OK, err)
        self.assertEqual(res["invite"], ("0 %d %d %s\n" % (
            int(res["invite"].split()[1]), len(data), md5hex(data))).encode())
        self.assertEqual(res["data"], data)

    def test_fake_device_final_error(self):
        img = self.write("fw.bin", firmware_bytes(5 * CHUNK))
        port, res = self.fake_device(final=b"ERROR[7]: MD5 Failed\n")
        rc, out, err = send(port, img)
        res["thread"].join(WAIT)
        self.assertEqual(rc, SEND_FINAL, err)
        self.assertIn("ERROR[7]: MD5 Failed", err)

    def test_fake_device_refuses(self):
        img = self.write("fw.bin", firmware_bytes(5 * CHUNK))
        port, res = self.fake_device(refuse=b"ERROR[4]: Not Enough Space\n")
        rc, out, err = send(port, img, "--fs")
        res["thread"].join(WAIT)
        self.assertEqual(rc, SEND_DEVICE_ERR, err)
        self.assertTrue(res["invite"].startswith(b"100 "))
        self.assertIn("Not Enough Space", err)

    # ---- hostile devices against ota-send ----

    def hostile_device(self, transfer, answer=b"OK"):
        """A device that answers the invitation with `answer` (None: an
        empty datagram and nothing more) and then runs transfer(conn, size)
        on the connection back, in a thread. Returns (port, thread)."""
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((DEVICE_IP, 0))
        udp.settimeout(10)

        def run():
            try:
                msg, host = udp.recvfrom(256)
                _, port, size, _ = msg.decode().split()
                udp.sendto(answer if answer is not None else b"", host)
                if answer != b"OK":
                    return
                with socket.create_connection((host[0], int(port)), timeout=10) as conn:
                    transfer(conn, int(size))
            except OSError:
                pass
            finally:
                udp.close()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return udp.getsockname()[1], t

    def test_ok_after_the_first_chunk_is_not_success(self):
        # The device takes one chunk, acks it and says OK: 1,460 of 262,144
        # bytes arrived.
        def transfer(conn, size):
            got = conn.recv(CHUNK)
            conn.sendall(str(len(got)).encode() + b"OK")
            time.sleep(0.2)

        img = self.write("fw.bin", firmware_bytes(256 * 1024))
        port, t = self.hostile_device(transfer)
        rc, out, err = send(port, img)
        t.join(WAIT)
        self.assertEqual(rc, SEND_PROTOCOL, out + err)
        self.assertIn("answered OK after only 1460 of 262144 bytes were sent", err)
        self.assertNotIn("bytes sent, device answered OK", out)

    def test_ok_without_acking_the_last_bytes_is_not_success(self):
        # Every byte arrives, but the last read is never acked before OK.
        def transfer(conn, size):
            got = 0
            while got < size:
                piece = conn.recv(CHUNK)
                if not piece:
                    return
                got += len(piece)
                if got < size:
                    conn.sendall(str(len(piece)).encode())
            conn.sendall(b"OK")
            time.sleep(0.2)

        size = 10 * CHUNK + 300
        img = self.write("fw.bin", firmware_bytes(size))
        port, t = self.hostile_device(transfer)
        rc, out, err = send(port, img)
        t.join(WAIT)
        self.assertEqual(rc, SEND_PROTOCOL, out + err)
        self.assertIn("acks account for at most %d of %d bytes" % (size - 300, size), err)

    def test_deadline_stops_a_dribbling_device(self):
        # One ack digit every 0.3 s: each wait for an ack is answered in
        # time, and only the deadline ends the push.
        def transfer(conn, size):
            conn.settimeout(0.3)
            for _ in range(40):
                try:
                    if conn.recv(65536) == b"":
                        return
                except socket.timeout:
                    pass
                conn.sendall(b"1")

        img = self.write("fw.bin", firmware_bytes(20 * CHUNK))
        port, t = self.hostile_device(transfer)
        started = time.monotonic()
        rc, out, err = send(port, img, "--deadline", "2")
        took = time.monotonic() - started
        t.join(WAIT)
        self.assertEqual(rc, SEND_CUT, out + err)
        self.assertIn("the push's deadline of 2.0 s passed", err)
        self.assertGreaterEqual(took, 2.0)
        self.assertLess(took, 5.0)

    def test_empty_answer_is_named(self):
        img = self.write("fw.bin", firmware_bytes(3000))
        port, t = self.hostile_device(None, answer=None)
        rc, out, err = send(port, img)
        t.join(WAIT)
        self.assertEqual(rc, SEND_NO_ANSWER, err)
        self.assertIn("to the invitation: an empty datagram", err)
        self.assertNotIn("Success", err)

    def test_deadline_in_help(self):
        p = subprocess.run([NOFUSS, "ota-send", "--help"], capture_output=True, text=True,
                           timeout=WAIT)
        self.assertEqual(p.returncode, 0)
        self.assertIn("--deadline SEC", p.stdout)
        self.assertIn("90 s plus", p.stdout)


if __name__ == "__main__":
    unittest.main()
