"""The admin listener (issue 9 items 5 and 6) on the real nofussd: a SQLite
fleet store filled with 1,000 devices by admin_fill (the store library, as
the loop posts events), then the JSON API, /metrics and the `nofuss devices`
and `nofuss explain` commands against it.

admin_fill prints what it posted per device; every count asserted here is
derived from that, never written down by hand.
"""
import collections
import json
import os
import re
import stat
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import socket

from harness import DataDir, Server, closed_by_peer, get, on_conn, read_response

FILL = os.environ.get("NOFUSS_ADMIN_FILL")
NOFUSS = os.environ.get("NOFUSS")
DEVICES = 1000
ADMIN_TOKEN = "adm-0123456789abcdef-ADMIN"
READ_TOKEN = "read-0123456789abcdef-READ"
STATES = ("none", "offered", "downloading", "downloaded", "confirmed", "reverted", "failed",
          "silent")


def write_tokens(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def start(data, *args):
    """nofussd with an admin listener on a free port; (server, admin port)."""
    srv = Server(data, "--admin-port", "0", *args)
    line = srv.wait_for(r"admin API at http://127\.0\.0\.1:(\d+)/")
    return srv, int(re.search(r":(\d+)/", line).group(1))


def parse_metrics(text):
    """Checks text against the Prometheus text format 0.0.4, line by line;
    returns {series: value}. Raises AssertionError naming the bad line."""
    name_rx = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    label_rx = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
    families, series = {}, {}
    assert text.endswith("\n"), "no final newline"
    for line in text[:-1].split("\n"):
        m = re.match(r"^# (HELP|TYPE) (\S+) (.+)$", line)
        if m:
            kind, name, rest = m.groups()
            assert name_rx.match(name), line
            fam = families.setdefault(name, {"samples": False})
            assert not fam["samples"], "HELP/TYPE after samples: " + line
            assert kind not in fam, "twice: " + line
            fam[kind] = rest
            if kind == "TYPE":
                assert rest in ("counter", "gauge"), line
                assert rest != "counter" or name.endswith("_total"), line
            continue
        assert not line.startswith("#"), "stray comment: " + line
        m = re.match(r"^([^{ ]+)(\{([^}]*)\})? (\S+)$", line)
        assert m, "bad sample: " + line
        name, _, labels, value = m.groups()
        assert name_rx.match(name), line
        assert name in families and "TYPE" in families[name], "no TYPE before: " + line
        families[name]["samples"] = True
        if labels is not None:
            assert label_rx.sub("", labels) == "", "bad labels: " + line
        float(value)
        key = name + ("{%s}" % labels if labels is not None else "")
        assert key not in series, "series twice: " + line
        series[key] = float(value)
    for name, fam in families.items():
        assert "HELP" in fam and "TYPE" in fam, name
    return series


class AdminTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.data = DataDir()
        cls.db = os.path.join(cls.data.path, "fleet.db")
        cls.now = int(time.time() * 1000)
        out = subprocess.run([FILL, "sqlite://" + cls.db, str(DEVICES), str(cls.now)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        cls.plan = [json.loads(line) for line in out.stdout.splitlines()]
        assert len(cls.plan) == DEVICES
        cls.tokens = os.path.join(cls.data.path, "tokens")
        write_tokens(cls.tokens, "# admin and read\n%s admin ops\n%s read grafana\n"
                     % (ADMIN_TOKEN, READ_TOKEN))
        cls.ini = os.path.join(cls.data.path, "nofussd.ini")
        with open(cls.ini, "w") as f:
            f.write("[nofussd]\nstore = sqlite://%s\n" % cls.db)
        cls.srv, cls.port = start(cls.data, "-c", cls.ini, "--admin-token-file", cls.tokens)

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        cls.data.cleanup()
        assert rc == 0, rc

    def api(self, path, token=ADMIN_TOKEN, method="GET", status=200):
        headers = {"Authorization": "Bearer " + token} if token else {}
        r = get(self.port, path, headers, version="1.1", method=method)
        self.assertEqual(r.status, status, "%s %s: %s" % (method, path, r.body[:300]))
        if path != "/metrics" or status != 200:
            self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertEqual(r.header("Cache-Control"), "no-store")
        return r

    def count(self, pred):
        return sum(1 for d in self.plan if pred(d))

    def test_tokens(self):
        for path in ("/api/v1/devices", "/api/v1/summary", "/metrics", "/no/such/path"):
            with self.subTest(path=path):
                r = self.api(path, token=None, status=401)
                self.assertEqual(r.header("WWW-Authenticate"), 'Bearer realm="nofussd"')
                self.assertIn("bearer token is needed", r.json()["error"])
                r = self.api(path, token=ADMIN_TOKEN + "x", status=401)
                self.assertIn('error="invalid_token"', r.header("WWW-Authenticate"))
                self.assertEqual(r.json(), {"error": "the bearer token is not valid",
                                            "status": 401})
        r = get(self.port, "/api/v1/summary", {"Authorization": "Basic b3BzOm9wcw=="})
        self.assertEqual(r.status, 401)
        # A wrong token is said in the log, with the address, and a run of
        # them at most 10 lines a second (NF_AUTH_LOG_PER_SEC).
        self.srv.wait_for(r"admin: 401 to 127\.0\.0\.1 for a bearer token: not a token", 10)
        seen = self.srv.line_count()
        t0 = time.monotonic()
        for _ in range(60):
            self.api("/api/v1/summary", token="x" * 20, status=401)
        self.srv.wait_for(r"for a bearer token", 10, start=seen)
        time.sleep(0.2)  # the log's reader thread
        said = sum(1 for line in list(self.srv.lines)[seen:]
                   if line is not None and "for a bearer token" in line)
        self.assertLessEqual(said, 10 * (int(time.monotonic() - t0) + 2))
        r = self.api("/api/v1/nothing", status=404)
        self.assertIn("no such endpoint", r.json()["error"])

    def test_roles_and_methods(self):
        key = self.plan[1]["key"]
        tag = "/api/v1/devices/%s/tags/kitchen" % key
        r = self.api(tag, token=READ_TOKEN, method="POST", status=403)
        self.assertIn('token "grafana" has the read role', r.json()["error"])
        self.api(tag, token=READ_TOKEN, method="DELETE", status=403)
        self.assertEqual(self.api(tag, method="POST").json(),
                         {"key": key, "tag": "kitchen", "added": True})
        page = self.api("/api/v1/devices?tag=kitchen", token=READ_TOKEN).json()
        self.assertEqual([d["key"] for d in page["devices"]], [key])
        self.assertEqual(page["devices"][0]["tags"], ["kitchen"])
        self.api(tag, method="DELETE")
        self.assertEqual(self.api("/api/v1/devices?tag=kitchen").json()["total"], 0)
        self.api("/api/v1/devices/%s/tags/no%%20good" % key, method="POST", status=400)
        self.api("/api/v1/devices/AA:00:00:00:00:01/tags/x", method="POST", status=404)
        r = self.api(tag, status=405)
        self.assertEqual(r.header("Allow"), "POST, DELETE")
        r = self.api("/api/v1/devices", method="PUT", status=405)
        self.assertEqual(r.header("Allow"), "GET, HEAD")
        r = get(self.port, "/api/v1/devices/%s/tags/x" % key,
                {"Authorization": "Bearer " + ADMIN_TOKEN, "Content-Length": "5"},
                version="1.1", method="POST")
        self.assertEqual(r.status, 413)

    def test_keep_alive(self):
        """Every answer without a request body keeps an HTTP/1.1 connection
        open: 200s, a 404, a 405, and a 401 (its body, if any, is the
        only reason to close). A request that frames a body the route does
        not read is answered at once, the body unread, and closed."""
        auth = {"Authorization": "Bearer " + ADMIN_TOKEN}
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            seen = []
            for method, path, h in [("GET", "/api/v1/summary", auth),
                                    ("GET", "/api/v1/devices?limit=3", auth),
                                    ("GET", "/api/v1/summary", {}),
                                    ("GET", "/api/v1/nothing", auth),
                                    ("PUT", "/api/v1/devices", auth),
                                    ("GET", "/metrics", auth),
                                    ("HEAD", "/api/v1/devices?limit=1", auth),
                                    ("GET", "/api/v1/devices/%s" % self.plan[2]["key"], auth)]:
                r = on_conn(s, self.port, method, path, h)
                seen.append(r.status)
                self.assertNotEqual(r.header("Connection"), "close", (method, path))
            self.assertEqual(seen, [200, 200, 401, 404, 405, 200, 200, 200])
            self.assertEqual(len(on_conn(s, self.port, "GET", "/api/v1/devices?limit=3",
                                         auth).json()["devices"]), 3)
            self.assertFalse(closed_by_peer(s))
            # A body where none is read: 413 at once, and the connection goes.
            s.sendall(b"POST /api/v1/rollouts/halt-all HTTP/1.1\r\nHost: x\r\n"
                      b"Authorization: Bearer " + ADMIN_TOKEN.encode() +
                      b"\r\nContent-Length: 5\r\n\r\n")
            r = read_response(s)
            self.assertEqual(r.status, 413)
            self.assertEqual(r.header("Connection"), "close")
            self.assertTrue(closed_by_peer(s, 5))
        # A 401 to a request with a body closes too: the body is not read.
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"POST /api/v1/rollouts/halt-all HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 5\r\n\r\n")
            r = read_response(s)
            self.assertEqual(r.status, 401)
            self.assertTrue(closed_by_peer(s, 5))

    def test_bad_filters(self):
        cases = [
            ("state=bogus", "state", ["confirmed, reverted, failed, silent"]),
            ("limit=0", "limit", ["from 1 to 1000"]),
            ("limit=5000", "limit", ["from 1 to 1000"]),
            ("offset=x", "offset", ["is not a number"]),
            ("sort=size", "sort", ["last_seen, first_seen, key, type, version, state, ip"]),
            ("order=sideways", "order", ["asc or desc"]),
            ("seen_after=last+week", "seen_after", ["RFC 3339", "24h"]),
            ("mac=xyz", "mac", ["not the start of a MAC"]),
            ("ip=10.0.0.0%2F8", "ip", ["not the start of an IP address"]),
            ("tag=a%20b", "tag", ["is not a tag"]),
            ("type=%G1", "type", ["bad %-escape"]),
            ("state=failed&state=none", "state", ["given twice"]),
        ]
        for query, param, words in cases:
            with self.subTest(query=query):
                body = self.api("/api/v1/devices?" + query, status=400).json()
                self.assertEqual(body.get("parameter"), param)
                self.assertTrue(body["error"].startswith(param + ": "), body)
                for w in words:
                    self.assertIn(w, body["error"])
        body = self.api("/api/v1/devices?colour=red", status=400).json()
        self.assertIn('unknown parameter "colour"; the parameters are type, version', body["error"])
        self.api("/api/v1/devices/not-a-mac", status=400)
        self.api("/api/v1/summary?x=1", status=400)

    def test_pagination(self):
        want = sorted(d["key"] for d in self.plan)
        keys, offset, limit = [], 0, 300
        for _ in range(10):
            page = self.api("/api/v1/devices?sort=key&order=asc&limit=%d&offset=%d"
                            % (limit, offset)).json()
            self.assertEqual(page["total"], DEVICES)
            self.assertEqual((page["offset"], page["limit"]), (offset, limit))
            self.assertEqual(page["count"], len(page["devices"]))
            keys += [d["key"] for d in page["devices"]]
            if page["next_offset"] is None:
                break
            self.assertEqual(page["next_offset"], offset + limit)
            offset = page["next_offset"]
        self.assertEqual(keys, want)
        # The default order: newest seen first, the same order twice.
        a = self.api("/api/v1/devices?limit=1000").json()["devices"]
        b = self.api("/api/v1/devices?limit=1000").json()["devices"]
        self.assertEqual([d["key"] for d in a], [d["key"] for d in b])
        seen = [d["last_seen_ms"] for d in a]
        self.assertEqual(seen, sorted(seen, reverse=True))
        self.assertEqual(self.api("/api/v1/devices?offset=5000").json()["devices"], [])

    def test_filters(self):
        day = self.now - 86400000
        cases = [
            ("state=confirmed", lambda d: d["state"] == "confirmed"),
            ("state=failed&type=LIGHT", lambda d: d["state"] == "failed" and d["type"] == "LIGHT"),
            ("version=2.0.0", lambda d: d["version"] == "2.0.0"),
            ("mac=5c-cf-7f-00-01", lambda d: d["key"].startswith("5C:CF:7F:00:01")),
            ("ip=10.0.1.", lambda d: True),  # every kind of key: checked below by IP
            ("seen_after=%d" % day, lambda d: d["last_seen_ms"] >= day),
            ("seen_before=%d" % day, lambda d: d["last_seen_ms"] < day),
        ]
        for query, pred in cases:
            with self.subTest(query=query):
                page = self.api("/api/v1/devices?limit=1000&" + query).json()
                if query.startswith("ip="):
                    self.assertTrue(all(d["ip"].startswith("10.0.1.") for d in page["devices"]))
                    self.assertEqual(page["total"], 256)
                    continue
                self.assertEqual(page["total"], self.count(pred))
                self.assertEqual(page["count"], self.count(pred))

    def test_one_device(self):
        d = next(p for p in self.plan if p["state"] == "confirmed")
        mac = d["key"]
        for spelling in (mac, mac.lower().replace(":", "-"), mac.replace(":", "")):
            with self.subTest(spelling=spelling):
                dev = self.api("/api/v1/devices/" + spelling).json()
                self.assertEqual(dev["key"], mac)
        self.assertEqual((dev["type"], dev["version"], dev["state"]),
                         (d["type"], d["version"], "confirmed"))
        self.assertEqual(dev["last_seen_ms"], d["last_seen_ms"])
        self.assertRegex(dev["last_seen"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual([h["kind"] for h in dev["history"]], ["confirmed", "downloaded", "offered"])
        self.assertEqual(dev["offer"]["images"][0]["bytes_served"], 4096)
        path_form = next(p for p in self.plan if "@" in p["key"])
        dev = self.api("/api/v1/devices/" + urllib.parse.quote(path_form["key"], safe="")).json()
        self.assertEqual((dev["key"], dev["mac"], dev["client"]),
                         (path_form["key"], None, "nofuss-path"))
        r = self.api("/api/v1/devices/AA:BB:CC:00:00:01", status=404)
        self.assertIn("no device AA:BB:CC:00:00:01", r.json()["error"])

    def test_summary(self):
        s = self.api("/api/v1/summary", token=READ_TOKEN).json()
        self.assertEqual(s["devices"], DEVICES)
        self.assertEqual(s["seen_24h"], self.count(lambda d: d["last_seen_ms"] >= self.now - 86400000))
        want = collections.Counter(d["state"] for d in self.plan)
        self.assertEqual(s["by_state"], {st: want.get(st, 0) for st in STATES})
        want = collections.Counter((d["type"], d["version"]) for d in self.plan)
        got = {(r["type"], r["version"]): r["devices"] for r in s["by_type_version"]}
        self.assertEqual(got, dict(want))
        self.assertFalse(s["truncated"])

    def test_decision(self):
        held = next(p for p in self.plan if p["answer"] == "held")
        d = self.api("/api/v1/devices/%s/decision" % held["key"]).json()
        self.assertEqual((d["answer"], d["answer_rule"], d["answer_target"]), ("held", 0, "2.0.0"))
        self.assertEqual(d["answer_reason"], "image 612 KiB, 480 KiB free")
        self.assertIn("held back: image 612 KiB, 480 KiB free", d["explanation"])
        self.assertEqual(self.api("/api/v1/decision/" + held["key"]).json()["answer"], "held")
        failed = next(p for p in self.plan if p["state"] == "failed")
        d = self.api("/api/v1/decision/" + failed["key"]).json()
        self.assertEqual((d["answer"], d["state"], d["target"]), ("offered", "failed", "2.0.0"))
        self.assertIn("offered version 2.0.0; the offer is now failed", d["explanation"])
        none = next(p for p in self.plan if p["state"] == "none" and p["answer"] == "none")
        d = self.api("/api/v1/decision/" + none["key"]).json()
        self.assertEqual((d["answer"], d["answer_rule"]), ("none", None))
        self.assertIn("got no update", d["explanation"])

    def test_metrics(self):
        r = self.api("/metrics", token=READ_TOKEN)
        self.assertEqual(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        m = parse_metrics(r.body.decode())
        devices = {k: v for k, v in m.items() if k.startswith("nofuss_devices{")}
        self.assertEqual(sum(devices.values()), DEVICES)
        self.assertEqual(m["nofuss_devices_known"], DEVICES)
        want = collections.Counter(d["state"] for d in self.plan)
        for st in STATES:
            self.assertEqual(m['nofuss_devices_by_state{state="%s"}' % st], want.get(st, 0))
        self.assertEqual(m["nofuss_store_up"], 1)
        self.assertEqual(m["nofuss_store_queue_capacity"], 16384)
        self.assertIn('nofuss_checks_total{client="esp8266-updater",answer="held"}', m)
        print("\n/metrics: %d bytes, %d series" % (len(r.body), len(m)))

    def test_page_latency(self):
        """Not a claim (bench/ makes those): the figure quoted in the report."""
        t = time.monotonic()
        for _ in range(5):
            self.api("/api/v1/devices?limit=1000")
        print("\nGET /api/v1/devices?limit=1000 (1,000 devices): %.1f ms each"
              % ((time.monotonic() - t) * 200))

    def cli(self, *args, token_file=True, env=None):
        cmd = [NOFUSS] + list(args) + ["--server", "http://127.0.0.1:%d" % self.port]
        if token_file:
            cmd += ["--token-file", self.tokens]
        e = dict(os.environ)
        e.pop("NOFUSS_TOKEN", None)
        e.update(env or {})
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=e)

    def test_cli(self):
        r = self.cli("devices", "--state", "confirmed", "--limit", "1000")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        confirmed = self.count(lambda d: d["state"] == "confirmed")
        self.assertEqual(lines[0].split()[:4], ["KEY", "TYPE", "VERSION", "CLIENT"])
        self.assertEqual(lines[-1], "%d of %d devices (offset 0)" % (confirmed, confirmed))
        self.assertEqual(len(lines), confirmed + 2)
        r = self.cli("devices", "--json", "--all", "--limit", "300", "--sort", "key", "--order",
                     "asc")
        self.assertEqual(r.returncode, 0, r.stderr)
        page = json.loads(r.stdout)
        self.assertEqual((page["total"], page["count"]), (DEVICES, DEVICES))
        self.assertEqual([d["key"] for d in page["devices"]], sorted(d["key"] for d in self.plan))
        r = self.cli("devices", "--type", "SONOFF", "--limit", "5",
                     env={"NOFUSS_TOKEN": READ_TOKEN}, token_file=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines()[-1], "5 of %d devices (offset 0)"
                         % self.count(lambda d: d["type"] == "SONOFF"))
        held = next(p for p in self.plan if p["answer"] == "held")
        r = self.cli("devices", "show", held["key"].lower())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("reason         image 612 KiB, 480 KiB free", r.stdout)
        self.assertIn("history (newest first)", r.stdout)
        r = self.cli("explain", held["key"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("held back: image 612 KiB, 480 KiB free", r.stdout.splitlines()[0])
        r = self.cli("explain", held["key"], "--json")
        self.assertEqual(json.loads(r.stdout)["answer"], "held")
        # Errors: each its status and the API's message.
        r = self.cli("devices", "--state", "bogus")
        self.assertEqual(r.returncode, 1)
        self.assertIn("state: \"bogus\" is not one of", r.stderr)
        r = self.cli("explain", "AA:BB:CC:00:00:09")
        self.assertEqual(r.returncode, 5)
        r = self.cli("devices", env={"NOFUSS_TOKEN": "wrong-token-wrong-token"}, token_file=False)
        self.assertEqual(r.returncode, 4)
        self.assertIn("the bearer token is not valid", r.stderr)
        r = self.cli("devices", token_file=False)
        self.assertEqual(r.returncode, 4)
        self.assertIn("NOFUSS_TOKEN", r.stderr)
        r = subprocess.run([NOFUSS, "devices", "--server", "http://127.0.0.1:1", "--token-file",
                            self.tokens], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 3)
        r = self.cli("devices", "show")
        self.assertEqual(r.returncode, 2)
        # Bad numbers are bad usage, said before a token is even read.
        for args, words in ((["--limit", "abc"], "--limit: 'abc' is not a number"),
                            (["--limit", "1001"], "--limit: '1001' is out of range (1 to 1000)"),
                            (["--offset", "-1"], "--offset: '-1' is not a number")):
            r = self.cli("devices", *args, token_file=False)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(words, r.stderr)


class AdminStartTest(unittest.TestCase):
    """The listener's settings: a store that is off, token files refused,
    token files changed while running."""

    def setUp(self):
        self.data = DataDir()
        self.tokens = os.path.join(self.data.path, "tokens")

    def tearDown(self):
        self.data.cleanup()

    def test_store_off(self):
        write_tokens(self.tokens, ADMIN_TOKEN + "\n")
        srv, port = start(self.data, "--admin-token-file", self.tokens, "--store", "off")
        try:
            auth = {"Authorization": "Bearer " + ADMIN_TOKEN}
            r = get(port, "/api/v1/devices", auth)
            self.assertEqual(r.status, 503)
            self.assertIn("the fleet store is off", r.json()["error"])
            r = get(port, "/metrics", auth)
            self.assertEqual(r.status, 200)
            m = parse_metrics(r.body.decode())
            self.assertEqual(m["nofuss_store_up"], 0)
            self.assertFalse(any(k.startswith("nofuss_devices") for k in m))
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_token_file_refused(self):
        for text, mode, words in (
                (ADMIN_TOKEN + "\n", 0o644, "readable or writable by others (mode 0644)"),
                (ADMIN_TOKEN + "\n", 0o660, "writable by its group (mode 0660)"),
                ("short\n", 0o600, "tokens:1: a token must have 16 to 256 characters"),
                (ADMIN_TOKEN + " root\n", 0o600, "role \"root\" is not admin or read")):
            with self.subTest(words=words):
                write_tokens(self.tokens, text, mode)
                srv = Server(self.data, "--admin-port", "0", "--admin-token-file", self.tokens,
                             expect_start=False)
                self.assertEqual(srv.proc.wait(20), 3)
                srv.stop()
                self.assertIn(words, srv.stderr())
                r = subprocess.run([os.environ.get("NOFUSSD"), "-d", self.data.path, "--check",
                                    "--admin-token-file", self.tokens], capture_output=True,
                                   text=True, timeout=60)
                self.assertEqual(r.returncode, 1)
                self.assertIn(words, r.stderr)
        srv = Server(self.data, "--admin-port", "0", "--admin-token-file",
                     self.tokens + ".missing", expect_start=False)
        self.assertEqual(srv.proc.wait(20), 3)
        srv.stop()
        self.assertIn("No such file or directory", srv.stderr())

    def test_token_file_reloaded(self):
        write_tokens(self.tokens, ADMIN_TOKEN + "\n")
        srv, port = start(self.data, "--admin-token-file", self.tokens)
        try:
            old = {"Authorization": "Bearer " + ADMIN_TOKEN}
            new = {"Authorization": "Bearer " + READ_TOKEN}
            self.assertEqual(get(port, "/metrics", old).status, 200)
            self.assertEqual(get(port, "/metrics", new).status, 401)
            write_tokens(self.tokens + ".tmp", READ_TOKEN + " read\n")
            os.rename(self.tokens + ".tmp", self.tokens)
            deadline = time.monotonic() + 10
            while get(port, "/metrics", new).status != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertEqual(get(port, "/metrics", new).status, 200)
            self.assertEqual(get(port, "/metrics", old).status, 401)
            srv.wait_for(r"admin token file .* reloaded: 1 tokens")
            # A bad file keeps what was loaded, and says so.
            write_tokens(self.tokens + ".tmp", READ_TOKEN + "\n", 0o666)
            os.rename(self.tokens + ".tmp", self.tokens)
            time.sleep(1.2)  # the file is looked at once a second, when a request comes
            self.assertEqual(get(port, "/metrics", new).status, 200)
            srv.wait_for(r"readable or writable by others.*keeping the 1 tokens", 10)
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_metrics_open(self):
        write_tokens(self.tokens, ADMIN_TOKEN + "\n")
        ini = os.path.join(self.data.path, "n.ini")
        with open(ini, "w") as f:
            f.write("admin-metrics-auth = no\n")
        srv, port = start(self.data, "-c", ini, "--admin-token-file", self.tokens)
        try:
            self.assertEqual(get(port, "/metrics").status, 200)
            self.assertEqual(get(port, "/api/v1/summary").status, 401)
        finally:
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
