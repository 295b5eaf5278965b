"""HTTPS on the admin listener (admin-tls-cert, admin-tls-key; server/tls.c
through server/admin/): the real nofussd with self-signed certificates made
by `openssl req` at test time (test_tls.py's helpers).

The API over TLS answers a token with 200 and no token with 401; plain
HTTP sent to the admin TLS port gets no answer and the server goes on;
TLS 1.1 is refused. Requests on one TLS connection are all answered on it,
one handshake for all. A certificate swapped on disk + one SIGHUP: new
handshakes on the admin port (and on the device port, reloaded with it)
see the new one, while a connection whose handshake was made before is
still answered. A key that is not the certificate's, on reload, keeps the old
pair with the reason logged; under --check and at start it is exit 1.
`nofuss devices` and `nofuss explain` reach the API with --server https://
and --cacert. An admin-listen that is not loopback, without admin TLS, is
warned of.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (NOFUSSD, ServerTest, check_headers, closed_by_peer, get, on_conn,
                     read_response)
from test_admin import ADMIN_TOKEN, write_tokens
from test_tls import OPENSSL, der, install, make_cert, request, s_client, tls_connect

NOFUSS = os.environ.get("NOFUSS")
RULES = [{"origin": {"device": "TEST", "max": "1.0.0"},
          "target": {"version": "2.0.0", "firmware": "/fw/new.bin"}}]
MACS = ["5C:CF:7F:00:00:%02X" % i for i in range(1, 4)]
AUTH = {"Authorization": "Bearer " + ADMIN_TOKEN}


@unittest.skipIf(OPENSSL is None, "no openssl command")
class AdminTlsTest(ServerTest):
    rules = RULES
    files = {"fw/new.bin": b"\xe9" + b"x" * 4095}

    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="nofuss-admintls-")
        cls.a = make_cert(cls.certs, "a")
        cls.b = make_cert(cls.certs, "b")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.tokens = os.path.join(self.data.path, "tokens")
        write_tokens(self.tokens, ADMIN_TOKEN + " admin ops\n")
        # The files the server reads, replaced as a renewal would.
        self.cert = os.path.join(self.data.path, "admin.crt")
        self.key = os.path.join(self.data.path, "admin.key")
        install(self.a, self.cert, self.key)

    def start(self, *args):
        """nofussd with the admin listener on TLS; self.port is the admin
        port."""
        srv = super().start("--admin-port", "0", "--admin-token-file", self.tokens,
                            "--admin-tls-cert", self.cert, "--admin-tls-key", self.key, *args)
        line = srv.wait_for(r"admin API at https://127\.0\.0\.1:(\d+)/api/v1/")
        self.port = int(re.search(r":(\d+)/", line).group(1))
        return srv

    def api(self, path, headers=AUTH, cafile=None):
        return request(self.port, path, cafile or self.a[0], headers)

    def run_nofussd(self, *args):
        return subprocess.run([NOFUSSD, "-d", self.data.path, "-l", "127.0.0.1", "-p", "0"]
                              + list(args), capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    def test_api_over_https(self):
        self.start()
        status, hdrs, body = self.api("/api/v1/summary")
        self.assertEqual(status, 200, body)
        self.assertEqual(hdrs["content-type"], "application/json")
        self.assertIn(b'"devices":0', body)
        status, hdrs, body = self.api("/api/v1/summary", headers={})
        self.assertEqual(status, 401, body)
        self.assertEqual(hdrs["www-authenticate"], 'Bearer realm="nofussd"')
        status, _, _ = self.api("/metrics", headers={"Authorization": "Bearer " + "x" * 20})
        self.assertEqual(status, 401)
        with tls_connect(self.port, self.a[0]) as s:
            self.assertEqual(s.getpeercert(binary_form=True), der(self.a[0]))
        # The device listener is not touched: still plain HTTP.
        r = get(self.server.port, "/", check_headers(MACS[0], "TEST", "0.5.0"))
        self.assertEqual(r.status, 200)
        self.assertIn(b'"version":"2.0.0"', r.body)
        self.assertNotIn("not a loopback address", self.server.stderr())

    def test_keep_alive_one_handshake(self):
        """Several API requests, a 401 among them, on one TLS connection:
        one handshake, every one answered, the connection still open."""
        self.start()
        with tls_connect(self.port, self.a[0]) as s:
            statuses = []
            for path, h in [("/api/v1/summary", AUTH), ("/api/v1/devices?limit=5", AUTH),
                            ("/api/v1/summary", {}), ("/metrics", AUTH),
                            ("/api/v1/releases", AUTH), ("/api/v1/summary", AUTH)]:
                r = on_conn(s, self.port, "GET", path, h)
                statuses.append(r.status)
                self.assertNotEqual(r.header("Connection"), "close", path)
            self.assertEqual(statuses, [200, 200, 401, 200, 200, 200])
            self.assertIn(b'"devices":0', r.body)
            self.assertFalse(closed_by_peer(s))

    def test_plain_http_and_old_protocols_refused(self):
        self.start()
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            raw.sendall(("GET /api/v1/summary HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
                         "\r\n\r\n" % ADMIN_TOKEN).encode())
            started = time.monotonic()
            try:
                got = raw.recv(4096)
            except (ConnectionResetError, socket.timeout):
                got = b""
            self.assertLess(time.monotonic() - started, 5.0)
            self.assertNotIn(b"HTTP/1.", got)
            self.assertNotIn(b"devices", got)
        out = s_client(self.port, self.a[0], "-tls1_2")
        self.assertRegex(out, r"New, TLSv1\.2, Cipher is (\S+)", out)
        self.assertIn("Verify return code: 0 (ok)", out)
        # TLS 1.1 offered for real (security level 0 lets the client send it).
        out = s_client(self.port, self.a[0], "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
        self.assertIn("Cipher is (NONE)", out)
        self.assertEqual(self.api("/api/v1/summary")[0], 200)  # and the server goes on

    def test_sighup_reloads_both_listeners(self):
        dev_cert = os.path.join(self.data.path, "dev.crt")
        dev_key = os.path.join(self.data.path, "dev.key")
        install(self.a, dev_cert, dev_key)
        srv = self.start("--tls-cert", dev_cert, "--tls-key", dev_key)
        # A connection whose handshake was made over the old certificate
        # (the admin listener closes after each answer: its request comes
        # after the reload).
        kept = tls_connect(self.port, self.a[0])
        self.assertEqual(kept.getpeercert(binary_form=True), der(self.a[0]))
        install(self.b, self.cert, self.key)
        install(self.b, dev_cert, dev_key)
        mark = srv.line_count()
        srv.signal(signal.SIGHUP)
        srv.wait_for(r"admin TLS: reloaded .*admin\.crt \(1 certificates\)", start=mark)
        srv.wait_for(r"nofussd: TLS: reloaded .*dev\.crt \(1 certificates\)", start=mark)
        for port in (self.port, srv.port):
            with tls_connect(port) as fresh:
                self.assertEqual(fresh.getpeercert(binary_form=True), der(self.b[0]), port)
        self.assertEqual(self.api("/api/v1/summary", cafile=self.b[0])[0], 200)
        # The connection made over the old certificate was not dropped.
        kept.sendall(("GET /api/v1/summary HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
                      "Bearer %s\r\n\r\n" % ADMIN_TOKEN).encode())
        self.assertEqual(read_response(kept).status, 200)
        kept.close()

    def test_bad_pair_on_reload_keeps_the_old(self):
        srv = self.start()
        shutil.copy(self.b[1], self.key)  # the key of another certificate
        mark = srv.line_count()
        srv.signal(signal.SIGHUP)
        line = srv.wait_for(r"admin TLS reload failed", start=mark)
        self.assertRegex(line, r"error: admin TLS reload failed, still serving the previous "
                               r"certificate: admin-tls-cert .*admin\.crt with admin-tls-key "
                               r".*admin\.key: the certificate and the key do not match")
        with tls_connect(self.port) as fresh:
            self.assertEqual(fresh.getpeercert(binary_form=True), der(self.a[0]))
        self.assertEqual(self.api("/api/v1/summary")[0], 200)

    @unittest.skipIf(NOFUSS is None, "NOFUSS not set")
    def test_cli_over_https(self):
        srv = self.start()
        for mac in MACS:
            self.assertEqual(get(srv.port, "/", check_headers(mac, "TEST", "0.5.0")).status, 200)
        # The store writes on its own thread: wait (bounded) until it has them.
        deadline = time.monotonic() + 10
        while b'"total":%d' % len(MACS) not in self.api("/api/v1/devices")[2]:
            self.assertLess(time.monotonic(), deadline, "the store never showed the devices")
            time.sleep(0.1)
        server = "https://127.0.0.1:%d" % self.port

        def cli(*args):
            env = dict(os.environ)
            env.pop("NOFUSS_TOKEN", None)
            return subprocess.run([NOFUSS] + list(args) + ["--server", server, "--token-file",
                                                           self.tokens],
                                  capture_output=True, text=True, timeout=60, env=env)

        r = cli("devices", "--cacert", self.a[0])
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split()[:4], ["KEY", "TYPE", "VERSION", "CLIENT"])
        self.assertEqual(sorted(line.split()[0] for line in lines[1:-1]), MACS)
        self.assertEqual(lines[-1], "%d of %d devices (offset 0)" % (len(MACS), len(MACS)))
        r = cli("explain", MACS[0], "--cacert", self.a[0])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2.0.0", r.stdout)
        # Without the CA, or with another: the certificate is refused (exit 3).
        for extra, hint in (((), "give it with --cacert FILE"),
                            (("--cacert", self.b[0]), "is --cacert the admin listener's")):
            r = cli("devices", *extra)
            self.assertEqual(r.returncode, 3, r.stdout)
            self.assertRegex(r.stderr, r"(?i)certificate", r.stderr)
            self.assertIn(hint, r.stderr)
        r = cli("devices", "--cacert", os.path.join(self.certs, "missing.pem"))
        self.assertEqual(r.returncode, 3)
        self.assertIn("missing.pem", r.stderr)

    def test_check_and_start_validate_the_pair(self):
        admin = ("--admin-token-file", self.tokens)
        r = self.run_nofussd(*admin, "--admin-tls-cert", self.cert, "--admin-tls-key", self.key,
                             "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("admin TLS: %s and %s, ok" % (self.cert, self.key), r.stdout)
        for extra in (("--check",), ("--admin-port", "0")):
            r = self.run_nofussd(*admin, "--admin-tls-cert", self.a[0], "--admin-tls-key",
                                 self.b[1], *extra)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertRegex(r.stderr, r"error: admin-tls-cert .*a\.crt with admin-tls-key "
                                       r".*b\.key: the certificate and the key do not match")
        r = self.run_nofussd(*admin, "--admin-tls-cert", self.cert, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("admin-tls-cert and admin-tls-key: give both", r.stderr)
        r = self.run_nofussd("--admin-tls-cert", self.cert, "--admin-tls-key", self.key,
                             "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("admin-tls-cert: only with admin-token-file", r.stderr)
        # tls-priorities applies to the admin listener too, and is checked.
        r = self.run_nofussd(*admin, "--admin-tls-cert", self.cert, "--admin-tls-key", self.key,
                             "--tls-priorities", "NORMAL:+NO-SUCH-THING", "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn('tls-priorities "NORMAL:+NO-SUCH-THING"', r.stderr)

    def test_clear_text_admin_warned(self):
        admin = ("--admin-token-file", self.tokens)
        warning = "is not a loopback address and the admin listener has no TLS"
        # --check binds nothing, so any address can be tried.
        for addr, warned in (("0.0.0.0", True), ("::", True), ("192.0.2.1", True),
                             ("127.0.0.1", False), ("127.1.2.3", False), ("::1", False),
                             ("::ffff:127.0.0.1", False), ("::ffff:192.0.2.1", True)):
            with self.subTest(addr=addr):
                r = self.run_nofussd(*admin, "--admin-listen", addr, "--check")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(warning in r.stderr, warned, r.stderr)
                r = self.run_nofussd(*admin, "--admin-listen", addr, "--admin-tls-cert",
                                     self.cert, "--admin-tls-key", self.key, "--check")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertNotIn(warning, r.stderr)
        # At start too: said before listening (192.0.2.1, a documentation
        # address no host has, cannot be bound: nothing listens off loopback).
        r = self.run_nofussd(*admin, "--admin-listen", "192.0.2.1", "--admin-port", "0")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("admin-listen 192.0.2.1 " + warning, r.stderr)
        self.assertIn("tokens and answers travel in clear text", r.stderr)


if __name__ == "__main__":
    unittest.main()
