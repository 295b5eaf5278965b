"""Releases (issue 10 item 1) and the audit log (item 8) on the real nofussd
with a real SQLite store: uploads through the admin API, streamed and
validated, stored by content under public/releases/, listed, shown and
deleted; every write in the audit log; `nofuss release` against it.

Digests are computed here with hashlib from the bytes sent, never written
down; "nothing left behind" is checked by listing the folder.
"""
import gzip
import hashlib
import http.client
import json
import os
import re
import socket
import subprocess
import time
import unittest
import urllib.parse

from harness import (DataDir, Server, closed_by_peer, connect, esp_image, get, on_conn,
                     read_response, wait_until)

NOFUSS = os.environ.get("NOFUSS")
ADMIN_TOKEN = "adm-0123456789abcdef-ADMIN"
READ_TOKEN = "read-0123456789abcdef-READ"
MAX_IMAGE = 16 * 1024 * 1024


def write_tokens(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def image(tag, size=20000, mode=0x02, size_code=0x20):
    """An ESP8266-looking image: 0xE9, flash mode byte, size nibble."""
    data = bytearray(esp_image(tag, size))
    data[2] = mode
    data[3] = size_code
    return bytes(data)


class ReleaseServer(unittest.TestCase):
    """nofussd with a store and an admin listener, and helpers; no tests."""

    def setUp(self):
        self.data = DataDir()
        self.db = os.path.join(self.data.path, "fleet.db")
        self.tokens = os.path.join(self.data.path, "tokens")
        write_tokens(self.tokens, "%s admin ops\n%s read grafana\n" % (ADMIN_TOKEN, READ_TOKEN))
        self.ini = os.path.join(self.data.path, "nofussd.ini")
        with open(self.ini, "w") as f:
            f.write("[nofussd]\nstore = %s\n" % self.store_url())
        self.releases = os.path.join(self.data.public, "releases")
        self.srv = None
        self.start()

    def store_url(self):
        return "sqlite://" + self.db

    def start(self, *args):
        self.srv = Server(self.data, "-c", self.ini, "--admin-token-file", self.tokens,
                          "--admin-port", "0", *args)
        line = self.srv.wait_for(r"admin API at http://127\.0\.0\.1:(\d+)/")
        self.port = int(re.search(r":(\d+)/", line).group(1))

    def tearDown(self):
        try:
            if self.srv is not None:
                self.assertEqual(self.srv.stop(), 0, self.srv.stderr())
        finally:
            self.data.cleanup()

    # ---- helpers ----

    def request(self, method, path, body=None, token=ADMIN_TOKEN, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        return r.status, json.loads(data.decode()), r

    def upload(self, data, device="SONOFF", version="1.2.0", status=201, token=ADMIN_TOKEN,
               **extra):
        q = {"device": device, "version": version}
        q.update(extra)
        st, body, _ = self.request("POST", "/api/v1/releases?" + urllib.parse.urlencode(q),
                                   data, token)
        self.assertEqual(st, status, body)
        return body

    def stored(self):
        return sorted(os.listdir(self.releases)) if os.path.isdir(self.releases) else []

    def audit(self):
        st, body, _ = self.request("GET", "/api/v1/audit?limit=1000", token=READ_TOKEN)
        self.assertEqual(st, 200, body)
        return body["entries"]



class ReleasesTest(ReleaseServer):

    def test_upload_digests_and_storage(self):
        fw = image("fw-1.2.0")
        rel = self.upload(fw, notes="first\nrelease")
        sha = hashlib.sha256(fw).hexdigest()
        self.assertEqual(rel["firmware"]["md5"], hashlib.md5(fw).hexdigest())
        self.assertEqual(rel["firmware"]["sha256"], sha)
        self.assertEqual(rel["firmware"]["size"], len(fw))
        self.assertEqual(rel["firmware"]["path"], "/releases/%s.bin" % sha)
        self.assertEqual((rel["firmware"]["format"], rel["firmware"]["flash_mode"]), ("esp", "DIO"))
        self.assertEqual(rel["firmware"]["flash_size"], 1024 * 1024)
        self.assertEqual((rel["device"], rel["version"], rel["notes"], rel["created_by"]),
                         ("SONOFF", "1.2.0", "first\nrelease", "ops"))
        self.assertIsNone(rel["filesystem"])
        self.assertEqual(self.stored(), [sha + ".bin"])
        with open(os.path.join(self.releases, sha + ".bin"), "rb") as f:
            self.assertEqual(f.read(), fw)
        # The filesystem image, once only.
        fs = b"littlefs-image-bytes" * 100
        st, rel2, _ = self.request("POST", "/api/v1/releases/%d/filesystem" % rel["id"], fs)
        self.assertEqual(st, 201, rel2)
        self.assertEqual(rel2["filesystem"]["sha256"], hashlib.sha256(fs).hexdigest())
        self.assertEqual(rel2["filesystem"]["md5"], hashlib.md5(fs).hexdigest())
        self.assertEqual(rel2["filesystem"]["format"], "raw")
        self.assertIsNone(rel2["filesystem"]["flash_mode"])
        st, body, _ = self.request("POST", "/api/v1/releases/%d/filesystem" % rel["id"], fs)
        self.assertEqual((st, body["parameter"]), (409, "filesystem"))
        # A gzip image; the same bytes under another version share one file.
        gz = gzip.compress(fw)
        self.assertEqual(self.upload(gz, version="1.2.1")["firmware"]["format"], "gzip")
        same = self.upload(fw, version="1.2.2")
        self.assertEqual(same["firmware"]["path"], rel["firmware"]["path"])
        self.assertEqual(len(self.stored()), 3)
        # Show and list (newest first, by device).
        st, shown, _ = self.request("GET", "/api/v1/releases/%d" % rel["id"], token=READ_TOKEN)
        self.assertEqual(shown, dict(rel2, rollouts=[]))
        st, lst, _ = self.request("GET", "/api/v1/releases?device=SONOFF", token=READ_TOKEN)
        self.assertEqual([r["version"] for r in lst["releases"]], ["1.2.2", "1.2.1", "1.2.0"])
        st, lst, _ = self.request("GET", "/api/v1/releases?device=OTHER", token=READ_TOKEN)
        self.assertEqual(lst["count"], 0)
        # Deleting 1.2.0 keeps the file 1.2.2 still uses; deleting 1.2.2 removes it.
        st, _, _ = self.request("DELETE", "/api/v1/releases/%d" % rel["id"])
        self.assertEqual(st, 200)
        self.assertIn(sha + ".bin", self.stored())
        self.assertNotIn(hashlib.sha256(fs).hexdigest() + ".bin", self.stored())
        st, _, _ = self.request("DELETE", "/api/v1/releases/%d" % same["id"])
        self.assertEqual(st, 200)
        self.assertNotIn(sha + ".bin", self.stored())
        st, body, _ = self.request("GET", "/api/v1/releases/%d" % rel["id"])
        self.assertEqual((st, body["parameter"]), (404, "id"))
        # It all survives a restart.
        self.assertEqual(self.srv.stop(), 0)
        self.start()
        st, lst, _ = self.request("GET", "/api/v1/releases", token=READ_TOKEN)
        self.assertEqual([r["version"] for r in lst["releases"]], ["1.2.1"])

    def test_every_bad_upload_names_its_field(self):
        good = image("x")
        self.upload(good, version="2.0.0")
        before = self.stored()
        bad_mode = image("m", mode=0x07)
        bad_size = image("s", size_code=0xF0)
        cases = [
            ({"device": ""}, good, 400, "device", "device is missing"),
            ({"device": "SON OFF"}, good, 400, "device", "is not a device type"),
            ({"version": ""}, good, 400, "version", "version is missing"),
            ({"version": "abc"}, good, 400, "version", "is not a version"),
            ({"version": "-1.0"}, good, 400, "version", "is not a version"),
            ({"version": "1" * 64}, good, 400, "version", "longer than 63 bytes"),
            ({"notes": "bell\x07"}, good, 400, "notes", "control characters"),
            ({"colour": "red"}, good, 400, "colour", 'unknown parameter "colour"'),
            ({}, b"<html>not an image</html>", 400, "firmware", "0x3C 0x68"),
            ({}, b"\xe9", 400, "firmware", "too short"),
            ({}, b"", 400, "firmware", "is empty"),
            ({}, bad_mode, 400, "firmware", "flash mode byte is 7"),
            ({}, bad_size, 400, "firmware", "flash size code 0xF"),
            ({"version": "2.0.0"}, good, 409, "version", "exists already"),
        ]
        for extra, data, status, field, words in cases:
            with self.subTest(field=field, words=words):
                q = {"device": "SONOFF", "version": "3.0.0"}
                q.update(extra)
                st, body, _ = self.request(
                    "POST", "/api/v1/releases?" + urllib.parse.urlencode(q), data)
                self.assertEqual((st, body.get("parameter")), (status, field), body)
                self.assertIn(words, body["error"])
                self.assertEqual(self.stored(), before)
        # A refusal known before the body waits for the body's end when the
        # client sends it at once (no Expect: 100-continue): no reset.
        st, body, _ = self.request("POST", "/api/v1/releases?device=SONOFF&version=bad",
                                   image("big", 5000000))
        self.assertEqual((st, body["parameter"]), (400, "version"))
        st, body, _ = self.request("POST", "/api/v1/releases?device=SONOFF&version=3.0.0",
                                   b"PK\x03\x04" + bytes(5000000))
        self.assertEqual((st, body["parameter"]), (400, "firmware"))
        # Too large: refused from its Content-Length, before the body is
        # read, to a client that waits for 100 Continue (curl does)...
        with connect(self.port) as s:
            s.sendall(("POST /api/v1/releases?device=SONOFF&version=3.0.0 HTTP/1.1\r\n"
                       "Host: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n"
                       "Expect: 100-continue\r\n\r\n" % (ADMIN_TOKEN, MAX_IMAGE + 1)).encode())
            r = read_response(s)
        self.assertEqual((r.status, r.json()["parameter"]), (413, "firmware"))
        # ... and after it to one that sends it at once (a browser's fetch).
        st, body, _ = self.request("POST", "/api/v1/releases?device=SONOFF&version=3.0.0",
                                   image("big", MAX_IMAGE + 1))
        self.assertEqual((st, body["parameter"]), (413, "firmware"))
        # Chunked past the bound: nothing written past it, refused at the end.
        st, body = self.chunked_upload(image("big", 65536), MAX_IMAGE // 65536 + 2)
        self.assertEqual((st, body["parameter"]), (413, "firmware"), body)
        self.assertIn("larger than 16777216 bytes", body["error"])
        # A wrong header is refused (its temporary file gone at the first bytes).
        st, body = self.chunked_upload(b"PK\x03\x04" + bytes(65532), 64)
        self.assertEqual((st, body["parameter"]), (400, "firmware"), body)
        self.assertEqual(self.stored(), before)
        self.assertFalse([n for n in os.listdir(self.releases) if n.startswith(".")])
        st, lst, _ = self.request("GET", "/api/v1/releases")
        self.assertEqual([r["version"] for r in lst["releases"]], ["2.0.0"])

    def chunked_upload(self, chunk, count):
        """Sends chunk count times, chunked, stopping when the server
        answers; (status, body)."""
        with connect(self.port) as s:
            s.sendall(("POST /api/v1/releases?device=SONOFF&version=9.9.9 HTTP/1.1\r\n"
                       "Host: x\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n"
                       "\r\n" % ADMIN_TOKEN).encode())
            for i in range(count):
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                if i == 1 and chunk.startswith(b"PK"):
                    # Refused at its first bytes: no file while the rest comes.
                    self.assertTrue(wait_until(lambda: not any(
                        n.startswith(".") for n in self.stored())))
            s.sendall(b"0\r\n\r\n")
            r = read_response(s, timeout=30)
        return r.status, r.json()

    def test_upload_keeps_the_connection(self):
        """An upload, a refused upload (its body read and dropped), then
        other requests, all on one HTTP/1.1 connection that stays open."""
        auth = {"Authorization": "Bearer " + ADMIN_TOKEN}
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            r = on_conn(s, self.port, "POST", "/api/v1/releases?device=SONOFF&version=1.2.0",
                        auth, image("A"))
            self.assertEqual(r.status, 201, r.body)
            self.assertNotEqual(r.header("Connection"), "close")
            rid = r.json()["id"]
            r = on_conn(s, self.port, "POST", "/api/v1/releases?device=SONOFF&version=1.2.0",
                        auth, image("B"))
            self.assertEqual(r.status, 409, r.body)
            r = on_conn(s, self.port, "GET", "/api/v1/releases", auth)
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual([x["version"] for x in r.json()["releases"]], ["1.2.0"])
            r = on_conn(s, self.port, "PATCH", "/api/v1/releases/%d" % rid, auth,
                        b'{"notes":"kept alive"}')
            self.assertEqual(r.status, 200, r.body)
            self.assertFalse(closed_by_peer(s))
        self.assertEqual(len(self.stored()), 1)

    def test_cut_upload_leaves_nothing(self):
        fw = image("cut", 200000)
        with connect(self.port) as s:
            s.sendall(("POST /api/v1/releases?device=SONOFF&version=4.0.0 HTTP/1.1\r\n"
                       "Host: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
                       % (ADMIN_TOKEN, len(fw))).encode())
            s.sendall(fw[:100000])
            # The temporary file exists while the upload goes on...
            self.assertTrue(wait_until(lambda: any(n.startswith(".upload-")
                                                   for n in self.stored())))
        # ... and is gone once the connection is cut.
        self.assertTrue(wait_until(lambda: self.stored() == [], timeout=10), self.stored())
        entries = wait_until(lambda: [e for e in self.audit() if "cut" in e["outcome"]])
        self.assertEqual(len(entries), 1, self.audit())
        self.assertEqual((entries[0]["action"], entries[0]["token"]), ("release.add", "ops"))
        st, lst, _ = self.request("GET", "/api/v1/releases")
        self.assertEqual(lst["count"], 0)
        # The same release uploads whole afterwards.
        self.upload(fw, version="4.0.0")

    def test_start_removes_uploads_a_crash_left(self):
        """A kill -9 mid-upload leaves its temporary file; the next start
        removes it once it is 10 minutes old (a younger one may be another
        node's upload in progress on shared storage)."""
        self.assertEqual(self.srv.stop(), 0)
        os.makedirs(self.releases, exist_ok=True)
        old, fresh = (os.path.join(self.releases, n) for n in (".upload-Ab12Cd", ".upload-Ef34Gh"))
        for path in (old, fresh):
            with open(path, "wb") as f:
                f.write(b"\xe9" * 4096)
        hour_ago = time.time() - 3600
        os.utime(old, (hour_ago, hour_ago))
        self.start()
        self.srv.wait_for(r"releases: removed 1 unfinished uploads an earlier run left", 10)
        self.assertEqual(sorted(os.listdir(self.releases)), [".upload-Ef34Gh"])

    def test_read_token_cannot_write_and_audit(self):
        fw = image("a")
        rel = self.upload(fw, version="5.0.0")
        writes = [
            ("POST", "/api/v1/releases?device=SONOFF&version=5.0.1", fw),
            ("POST", "/api/v1/releases/%d/filesystem" % rel["id"], b"fs"),
            ("DELETE", "/api/v1/releases/%d" % rel["id"], None),
        ]
        for method, path, body in writes:
            with self.subTest(method=method, path=path):
                st, b, _ = self.request(method, path, body, token=READ_TOKEN)
                self.assertEqual(st, 403, b)
                self.assertIn('token "grafana" has the read role', b["error"])
        self.assertEqual(self.stored(), ["%s.bin" % rel["firmware"]["sha256"]])
        st, _, _ = self.request("DELETE", "/api/v1/releases/%d" % rel["id"])
        self.assertEqual(st, 200)
        st, _, _ = self.request("DELETE", "/api/v1/releases/%d" % rel["id"])
        self.assertEqual(st, 404)
        st, _, _ = self.request("DELETE", "/api/v1/releases/x1")
        self.assertEqual(st, 400)
        entries = self.audit()
        got = [(e["token"], e["action"], e["status"]) for e in reversed(entries)]
        self.assertEqual(got, [("ops", "release.add", 201),
                               ("grafana", "release.add", 403),
                               ("grafana", "release.filesystem", 403),
                               ("grafana", "release.delete", 403),
                               ("ops", "release.delete", 200),
                               ("ops", "release.delete", 404),
                               ("ops", "release.delete", 400)])
        self.assertEqual(entries[-1]["target"], "release %d (SONOFF 5.0.0)" % rel["id"])
        self.assertEqual(entries[-1]["outcome"], "ok")
        self.assertIn("no release", entries[1]["outcome"])
        # Reads are not audited; paging works from the newest down.
        st, page, _ = self.request("GET", "/api/v1/audit?limit=3", token=READ_TOKEN)
        self.assertEqual([e["id"] for e in page["entries"]], [e["id"] for e in entries[:3]])
        st, page2, _ = self.request("GET", "/api/v1/audit?limit=3&before=%d"
                                    % page["next_before"], token=READ_TOKEN)
        self.assertEqual([e["id"] for e in page2["entries"]], [e["id"] for e in entries[3:6]])
        for q, param in (("limit=0", "limit"), ("before=x", "before"), ("who=me", "who")):
            st, b, _ = self.request("GET", "/api/v1/audit?" + q)
            self.assertEqual((st, b["parameter"]), (400, param))

    def test_edit_notes_json_body(self):
        rel = self.upload(image("n"), version="7.0.0", notes="old")
        path = "/api/v1/releases/%d" % rel["id"]
        st, body, _ = self.request("PATCH", path, b'{"notes": "new\\nnotes"}')
        self.assertEqual((st, body["notes"]), (200, "new\nnotes"), body)
        self.assertEqual(body["firmware"], rel["firmware"])
        cases = [
            (b"", "body", "empty"),
            (b"{", "body", "not JSON"),
            (b'["notes"]', "body", "must be a JSON object"),
            (b'{"notes": 5}', "notes", "must be a string, not an integer"),
            (b'{"notes": "a", "version": "9"}', "version", 'unknown field "version"'),
            (b'{"notes": "a", "notes": "b"}', "body", "duplicate"),
            (b"{}", "notes", "notes is missing"),
            (('{"notes": "%s"}' % ("x" * 1024)).encode(), "notes", "0 to 1023 bytes"),
            (b'{"notes": "bell\u0007"}', "notes", "control characters"),
        ]
        for data, field, words in cases:
            with self.subTest(data=data[:40]):
                st, body, _ = self.request("PATCH", path, data)
                self.assertEqual((st, body.get("parameter")), (400, field), body)
                self.assertIn(words, body["error"])
        st, body, _ = self.request("PATCH", path, b" " * 70000)
        self.assertEqual((st, body.get("parameter")), (413, "body"), body)
        st, body, _ = self.request("PATCH", path, b'{"notes": "x"}', token=READ_TOKEN)
        self.assertEqual(st, 403)
        st, body, _ = self.request("PATCH", "/api/v1/releases/999", b'{"notes": "x"}')
        self.assertEqual((st, body.get("parameter")), (404, "id"))
        st, shown, _ = self.request("GET", path)
        self.assertEqual(shown["notes"], "new\nnotes")
        edits = [e for e in self.audit() if e["action"] == "release.edit"]
        self.assertEqual(len(edits), len(cases) + 4)
        self.assertEqual([e["status"] for e in reversed(edits)],
                         [200] + [400] * len(cases) + [413, 403, 404])

    @unittest.skipUnless(NOFUSS, "NOFUSS (the nofuss tool) not set")
    def test_pubkey_refuses_unsigned(self):
        key, pub = (os.path.join(self.data.path, n) for n in ("key.pem", "pub.pem"))
        other, other_pub = (os.path.join(self.data.path, n) for n in ("o.pem", "opub.pem"))
        for k, p in ((key, pub), (other, other_pub)):
            subprocess.run([NOFUSS, "keygen", k, p], check=True, capture_output=True, timeout=60)
        raw = os.path.join(self.data.path, "fw.bin")
        with open(raw, "wb") as f:
            f.write(image("signed", 30000))
        signed, wrong = (os.path.join(self.data.path, n) for n in ("s.bin", "w.bin"))
        for k, out in ((key, signed), (other, wrong)):
            subprocess.run([NOFUSS, "sign", "--key", k, "-o", out, raw], check=True,
                           capture_output=True, timeout=60)
        self.assertEqual(self.srv.stop(), 0)
        self.start("--pubkey", pub)
        with open(raw, "rb") as f:
            body = self.upload(f.read(), version="8.0.0", status=400)
        self.assertEqual(body["parameter"], "firmware")
        self.assertIn("is not signed by nofussd's public key", body["error"])
        with open(wrong, "rb") as f:
            body = self.upload(f.read(), version="8.0.0", status=400)
        self.assertEqual(body["parameter"], "firmware")
        self.assertEqual(self.stored(), [])
        with open(signed, "rb") as f:
            data = f.read()
        rel = self.upload(data, version="8.0.0")
        self.assertEqual(rel["firmware"]["md5"], hashlib.md5(data).hexdigest())
        self.assertEqual(self.stored(), [hashlib.sha256(data).hexdigest() + ".bin"])

    @unittest.skipUnless(NOFUSS, "NOFUSS (the nofuss tool) not set")
    def test_cli(self):
        fw_path = os.path.join(self.data.path, "fw.bin")
        fs_path = os.path.join(self.data.path, "fs.bin")
        fw, fs = image("cli", 50000), b"fs" * 5000
        with open(fw_path, "wb") as f:
            f.write(fw)
        with open(fs_path, "wb") as f:
            f.write(fs)
        env = dict(os.environ, NOFUSS_TOKEN=ADMIN_TOKEN)
        base = [NOFUSS, "release", "--server", "http://127.0.0.1:%d" % self.port]

        def run(*args, rc=0, token=None):
            e = env if token is None else dict(env, NOFUSS_TOKEN=token)
            out = subprocess.run(base[:2] + list(args) + base[2:], capture_output=True,
                                 text=True, timeout=60, env=e)
            self.assertEqual(out.returncode, rc, out.stderr + out.stdout)
            return out

        out = run("add", "--device", "SONOFF", "--version", "6.0.0", "--notes", "cli",
                  "--fs", fs_path, fw_path, "--json")
        rel = json.loads(out.stdout)
        self.assertEqual(rel["firmware"]["sha256"], hashlib.sha256(fw).hexdigest())
        self.assertEqual(rel["filesystem"]["md5"], hashlib.md5(fs).hexdigest())
        out = run("list")
        self.assertIn("6.0.0", out.stdout)
        self.assertIn(hashlib.md5(fw).hexdigest()[:12], out.stdout)
        out = run("show", str(rel["id"]))
        self.assertIn(hashlib.sha256(fw).hexdigest(), out.stdout)
        out = run("add", "--device", "SONOFF", "--version", "6.0.0", fw_path, rc=1)
        self.assertIn("exists already", out.stderr)
        # A bad filesystem image leaves no half release behind.
        empty = os.path.join(self.data.path, "empty.bin")
        open(empty, "wb").close()
        out = run("add", "--device", "SONOFF", "--version", "6.0.1", "--fs", empty, fw_path,
                  rc=1)
        self.assertIn("filesystem is empty", out.stderr)
        # One that cannot be read is said before anything is sent.
        missing = os.path.join(self.data.path, "missing.bin")
        out = run("add", "--device", "SONOFF", "--version", "6.0.2", "--fs", missing, fw_path,
                  rc=1)
        self.assertIn("missing.bin: No such file or directory", out.stderr)
        self.assertNotIn("deleted again", out.stderr)
        st, lst, _ = self.request("GET", "/api/v1/releases")
        self.assertEqual([r["version"] for r in lst["releases"]], ["6.0.0"])
        # Nothing reached the server: three uploads (6.0.0 twice, 6.0.1), not four.
        adds = [e for e in self.audit() if e["action"] == "release.add"]
        self.assertEqual(len(adds), 3, adds)
        out = run("delete", str(rel["id"]), rc=4, token=READ_TOKEN)
        self.assertIn("read role", out.stderr)
        run("delete", str(rel["id"]))
        self.assertEqual(self.stored(), [])
        out = run("show", str(rel["id"]), rc=5)


if __name__ == "__main__":
    unittest.main()
