"""HTTPS on the device listener (tls-cert, tls-key; server/tls.c): the real
nofussd with self-signed certificates made by `openssl req` at test time.

A check and a download over TLS (Python's ssl and curl --cacert): the
answer, the image's bytes and x-MD5 are those of plain HTTP. TLS 1.2 and
1.3 handshake (openssl s_client); TLS 1.1 is refused (the client really
offers it: security level 0). Plain HTTP to the TLS port is closed at once
and the server goes on. A renewed certificate swapped on disk + SIGHUP:
new handshakes get it while a download begun over the old one completes,
and checks made without pause through the reload all succeed. A bad
certificate or a key that is not the certificate's, on reload, keeps the
current one with an error logged; at start and under --check they are
exit 1 with the reason.
"""
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from harness import NOFUSSD, ServerTest, check_headers, esp_image, md5, read_response

OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")
MAC = "5C:CF:7F:8B:6B:26"
BIG = 8 * 1024 * 1024  # an image large enough to stay in flight while paused
RULES = [{"origin": {"device": "TEST", "max": "1.0.0"},
          "target": {"version": "2.0.0", "firmware": "/fw/big.bin"}}]


def make_cert(folder, name):
    """(cert, key) PEM paths of a self-signed RSA-2048 certificate for 127.0.0.1."""
    cert, key = os.path.join(folder, name + ".crt"), os.path.join(folder, name + ".key")
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=nofuss-test-" + name,
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def der(cert):
    with open(cert) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def tls_connect(port, cafile=None, timeout=10.0):
    """A TLS socket to the server: verified against cafile, or unverified."""
    ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    # Else the request waits behind the client's Finished for a delayed ACK.
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1" if cafile else None)


def install(pair, cert, key):
    """Copies pair's (cert, key) over the files cert and key, each by a rename."""
    for src, dst in zip(pair, (cert, key)):
        shutil.copy(src, dst + ".new")
        os.rename(dst + ".new", dst)


def s_client(port, cafile, *args):
    """What `openssl s_client` says connecting to port, trusting cafile."""
    r = subprocess.run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-CAfile", cafile] + list(args),
                       input="", capture_output=True, text=True, timeout=30)
    return r.stdout + r.stderr


def request(port, path, cafile, headers=None):
    """(status, headers dict, body) of one GET over TLS, Connection: close."""
    lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port, "Connection: close"]
    lines += ["%s: %s" % kv for kv in (headers or {}).items()]
    with tls_connect(port, cafile) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        r = read_response(s)
    return r.status, r.headers, r.body


@unittest.skipIf(OPENSSL is None, "no openssl command")
class TlsTest(ServerTest):
    rules = RULES

    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="nofuss-tls-")
        cls.a = make_cert(cls.certs, "a")
        cls.b = make_cert(cls.certs, "b")
        cls.both = os.path.join(cls.certs, "both.pem")  # trusts a and b
        with open(cls.both, "w") as out:
            for cert in (cls.a[0], cls.b[0]):
                with open(cert) as f:
                    out.write(f.read())

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.image = esp_image("big", BIG)
        self.data.add_file("fw/big.bin", self.image)
        # The files the server reads, replaced as a renewal would.
        self.cert = os.path.join(self.data.path, "server.crt")
        self.key = os.path.join(self.data.path, "server.key")
        self.install(self.a)

    def install(self, pair):
        install(pair, self.cert, self.key)

    def start_tls(self, *args):
        return self.start("--tls-cert", self.cert, "--tls-key", self.key, *args)

    def check(self, cafile=None):
        status, _, body = request(self.server.port, "/", cafile or self.a[0],
                                  check_headers(MAC, "TEST", "0.5.0"))
        return status, body

    def test_check_and_download(self):
        s = self.start_tls()
        status, body = self.check()
        self.assertEqual((status, body), (200, b'{"version":"2.0.0","firmware":"/fw/big.bin","spiffs":""}'))
        status, hdrs, body = request(s.port, "/fw/big.bin", self.a[0],
                                     {"User-Agent": "ESP8266-http-Update",
                                      "x-ESP8266-mode": "sketch"})
        self.assertEqual(status, 200)
        self.assertEqual(len(body), BIG)
        self.assertEqual(hashlib.sha256(body).digest(), hashlib.sha256(self.image).digest())
        self.assertEqual(hdrs["x-md5"], md5(self.image))
        if CURL:
            r = subprocess.run([CURL, "-sS", "--cacert", self.a[0], "-H", "X-ESP8266-MAC: " + MAC,
                                "-H", "X-ESP8266-DEVICE: TEST", "-H", "X-ESP8266-VERSION: 0.5.0",
                                "https://127.0.0.1:%d/" % s.port],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('"version":"2.0.0"', r.stdout)
            # A client that checks the name against another CA refuses it.
            r = subprocess.run([CURL, "-sS", "--cacert", self.b[0],
                                "https://127.0.0.1:%d/" % s.port],
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)

    def s_client(self, port, *args):
        return s_client(port, self.a[0], *args)

    def test_protocol_versions(self):
        s = self.start_tls()
        for flag, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            out = self.s_client(s.port, flag)
            self.assertRegex(out, r"New, %s, Cipher is (\S+)" % re.escape(name), out)
            self.assertIn("Verify return code: 0 (ok)", out)
        # TLS 1.1 and 1.0, offered for real (security level 0 lets the
        # client send them): no handshake.
        for flag in ("-tls1_1", "-tls1"):
            out = self.s_client(s.port, flag, "-cipher", "DEFAULT:@SECLEVEL=0")
            self.assertIn("Cipher is (NONE)", out, flag)
        if CURL:
            r = subprocess.run([CURL, "-sS", "--cacert", self.a[0], "--tls-max", "1.1",
                                "--ciphers", "DEFAULT:@SECLEVEL=0",
                                "https://127.0.0.1:%d/" % s.port],
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertEqual(self.check()[0], 200)

    def test_plain_http_to_tls_port(self):
        s = self.start_tls()
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            started = time.monotonic()
            try:
                got = raw.recv(4096)
            except ConnectionResetError:
                got = b""
            self.assertLess(time.monotonic() - started, 5.0)
            self.assertNotIn(b"200 OK", got)
        self.assertEqual(self.check()[0], 200)  # and the server goes on

    def test_reload_swaps_certificate_under_load(self):
        s = self.start_tls()
        # A download over the old certificate, paused after its first bytes.
        paused = tls_connect(s.port, self.a[0])
        self.assertEqual(paused.getpeercert(binary_form=True), der(self.a[0]))
        paused.sendall(b"GET /fw/big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        first = paused.recv(65536)
        self.assertIn(b" 200 ", first.split(b"\r\n", 1)[0])
        # Checks without pause through the reload, trusting either certificate.
        results, stop = [], threading.Event()

        def hammer():
            while not stop.is_set() and len(results) < 5000:
                try:
                    results.append(self.check(self.both)[0])
                except (OSError, ssl.SSLError) as e:
                    results.append(repr(e))

        t = threading.Thread(target=hammer)
        t.start()
        try:
            time.sleep(1.0)
            self.install(self.b)
            mark = s.line_count()
            s.signal(signal.SIGHUP)
            s.wait_for(r"TLS: reloaded .*server\.crt \(1 certificates\)", start=mark)
            time.sleep(1.0)
        finally:
            stop.set()
            t.join(30)
        failed = [r for r in results if r != 200]
        self.assertEqual(failed, [], "%d of %d checks failed" % (len(failed), len(results)))
        self.assertGreater(len(results), 10)
        with tls_connect(s.port) as fresh:
            self.assertEqual(fresh.getpeercert(binary_form=True), der(self.b[0]))
        # The paused download, begun under the old certificate, completes.
        data = first
        while True:
            chunk = paused.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        paused.close()
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertEqual(len(body), BIG)
        self.assertEqual(hashlib.md5(body).hexdigest(), md5(self.image))
        self.assertIn(("x-MD5: " + md5(self.image)).encode(), head)
        print("\nTLS reload under load: %d checks, %d failed; the paused download completed"
              % (len(results), len(failed)))

    def test_bad_certificate_on_reload_keeps_the_old(self):
        s = self.start_tls()
        cases = (("garbage certificate", b"-----BEGIN CERTIFICATE-----\nnot base64\n"
                  b"-----END CERTIFICATE-----\n", None, r"tls-cert .*server\.crt"),
                 ("key of another certificate", None, self.b[1], r".*do not match"))
        for name, cert_bytes, key_src, why in cases:
            self.install(self.a)
            if cert_bytes is not None:
                with open(self.cert, "wb") as f:
                    f.write(cert_bytes)
            if key_src is not None:
                shutil.copy(key_src, self.key)
            mark = s.line_count()
            s.signal(signal.SIGHUP)
            line = s.wait_for(r"TLS reload failed", start=mark)
            self.assertRegex(line, r"error: TLS reload failed, still serving the previous "
                                   r"certificate: " + why, name)
            with tls_connect(s.port) as fresh:
                self.assertEqual(fresh.getpeercert(binary_form=True), der(self.a[0]), name)
            self.assertEqual(self.check()[0], 200, name)

    def test_check_and_start_validate_the_pair(self):
        run = lambda *a: subprocess.run(  # noqa: E731
            [NOFUSSD, "-d", self.data.path, "-l", "127.0.0.1", "-p", "0"] + list(a),
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        r = run("--tls-cert", self.cert, "--tls-key", self.key, "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("TLS: %s and %s, ok" % (self.cert, self.key), r.stdout)
        for extra in (("--check",), ()):
            r = run("--tls-cert", self.a[0], "--tls-key", self.b[1], *extra)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertRegex(r.stderr, r"error: tls-cert .* with tls-key .*: .*do not match")
        r = run("--tls-cert", self.cert, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("tls-cert and tls-key: give both", r.stderr)
        r = run("--tls-cert", self.cert, "--tls-key", self.key, "--tls-priorities",
                "NORMAL:+NO-SUCH-THING", "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn('tls-priorities "NORMAL:+NO-SUCH-THING"', r.stderr)


if __name__ == "__main__":
    unittest.main()
