"""The operator's side of staged rollouts (issue 10 items 3, 4, 5 and 8) on the
real nofussd with a real SQLite store: a rollout's window and rate checked
and kept; its counts by state, whole and per phase, with the gates' figures;
device pins and exclusions through the API and `nofuss devices`; `nofuss
rollout show` and its --watch line. Every write refused to a read token and
found in the audit log.

Devices are made by real checks to nofussd's device port. Until the check
path offers rollouts, a rollout's offers are written into the SQLite file
here, as the rule codes the check path will record (store.h:
nf_rollout_rule(id, phase) = -(2 + id x 16 + phase)); every expected count is
derived from the rows written, never written down by hand.
"""
import collections
import json
import os
import pty
import select
import sqlite3
import subprocess
import time
import unittest

from harness import check_headers, get, wait_until
from test_releases import ADMIN_TOKEN, NOFUSS, READ_TOKEN, ReleaseServer, image

KINDS = ("pending", "confirmed", "reverted", "failed", "silent", "withdrawn")
# Stored update states (store.h enum nf_update_state).
OFFERED, DOWNLOADING, DOWNLOADED, CONFIRMED, REVERTED, FAILED, NONE = 1, 2, 3, 4, 5, 6, 0


def rule_code(rollout, phase):
    return -(2 + rollout * 16 + phase)


def mac(i):
    return "5C:CF:7F:10:%02X:%02X" % (i >> 8, i & 0xff)


class ControlsServer(ReleaseServer):
    def api(self, method, path, body=None, token=ADMIN_TOKEN, status=200):
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        st, out, _ = self.request(method, path, data, token)
        self.assertEqual(st, status, out)
        return out

    def checks(self, devices):
        """Real checks for [(mac, type, version)]; waits until the store has them."""
        for m, dev, ver in devices:
            r = get(self.srv.port, "/", check_headers(m, dev, ver))
            self.assertIn(r.status, (200, 304), r.body)
        self.assertTrue(wait_until(
            lambda: self.api("GET", "/api/v1/devices?limit=1000")["total"] >= len(devices)),
            "the store did not record the checks")

    def sql(self, statements):
        db = sqlite3.connect(self.db, timeout=30)
        try:
            for text, args in statements:
                db.execute(text, args)
            db.commit()
        finally:
            db.close()

    def query(self, text, args=()):
        db = sqlite3.connect(self.db, timeout=30)
        try:
            return db.execute(text, args).fetchall()
        finally:
            db.close()


class WindowRateTest(ControlsServer):
    def test_window_and_rate(self):
        rels = [self.upload(image("w%d" % i), version="2.0.%d" % i) for i in range(4)]
        ro = self.api("POST", "/api/v1/rollouts", {"release": rels[0]["id"]}, status=201)
        self.assertEqual((ro["window"], ro["rate"]), (None, 0))
        ro = self.api("POST", "/api/v1/rollouts", {"release": rels[1]["id"], "window":
                      "01:00-05:00", "rate": 60}, status=201)
        self.assertEqual((ro["window"], ro["rate"]), ("01:00-05:00", 60))
        wrap = self.api("POST", "/api/v1/rollouts", {"release": rels[2]["id"], "window":
                        "22:30-05:15", "rate": 100000}, status=201)
        self.assertEqual((wrap["window"], wrap["rate"]), ("22:30-05:15", 100000))
        always = self.api("POST", "/api/v1/rollouts", {"release": rels[3]["id"], "window": "",
                          "rate": 0}, status=201)
        self.assertEqual((always["window"], always["rate"]), (None, 0))
        # Stored as minutes of the day, -1 for none.
        rows = dict((r[0], r[1:]) for r in self.query(
            "SELECT id, window_start, window_end, rate FROM rollouts"))
        self.assertEqual(rows[ro["id"]], (60, 300, 60))
        self.assertEqual(rows[wrap["id"]], (22 * 60 + 30, 5 * 60 + 15, 100000))
        self.assertEqual(rows[always["id"]], (-1, -1, 0))
        # Kept across a restart, in the list too.
        self.assertEqual(self.srv.stop(), 0)
        self.start()
        listed = {r["id"]: (r["window"], r["rate"]) for r in
                  self.api("GET", "/api/v1/rollouts", token=READ_TOKEN)["rollouts"]}
        self.assertEqual(listed[ro["id"]], ("01:00-05:00", 60))
        self.assertEqual(listed[wrap["id"]], ("22:30-05:15", 100000))

        rel = self.upload(image("bad"), version="3.0.0")
        good = {"release": rel["id"]}
        cases = [
            (dict(good, window="01:00-01:00"), "window", "is empty"),
            (dict(good, window="00:00-00:00"), "window", "is empty"),
            (dict(good, window="1:00-5:00"), "window", "is not HH:MM-HH:MM"),
            (dict(good, window="24:00-05:00"), "window", "is not HH:MM-HH:MM"),
            (dict(good, window="01:60-05:00"), "window", "is not HH:MM-HH:MM"),
            (dict(good, window="01:00/05:00"), "window", "is not HH:MM-HH:MM"),
            (dict(good, window="01:00-05:0x"), "window", "is not HH:MM-HH:MM"),
            (dict(good, window="01:00-05:00 "), "window", "0 to 11 bytes"),
            (dict(good, window=100), "window", "must be a string"),
            (dict(good, window=None), "window", "must be a string"),
            (dict(good, rate=-1), "rate", "from 0 to 100000"),
            (dict(good, rate=100001), "rate", "from 0 to 100000"),
            (dict(good, rate=1.5), "rate", "must be an integer"),
            (dict(good, rate="60"), "rate", "must be an integer"),
        ]
        for body, field, words in cases:
            with self.subTest(body=body):
                out = self.api("POST", "/api/v1/rollouts", body, status=400)
                self.assertEqual(out["parameter"], field, out)
                self.assertIn(words, out["error"])
        # A JSON route reads its query at the body's end: still there then.
        out = self.api("POST", "/api/v1/rollouts?colour=red", good, status=400)
        self.assertEqual((out["parameter"], out["error"]),
                         ("colour", 'unknown parameter "colour": this takes none'))
        # Nothing was stored by a refused body.
        self.assertEqual(len(self.api("GET", "/api/v1/rollouts")["rollouts"]), 4)


class CountsTest(ControlsServer):
    def test_counts_per_phase_and_gates(self):
        # The devices check in before the rollout starts, and not after: the
        # offers counted are only the rows written below. The gates are set
        # so that no watcher moves the rollout meanwhile: errors never halt
        # (100%) and the soak is an hour.
        n = 40
        self.checks([(mac(i), "SONOFF", "1.0.0") for i in range(n)])
        rel = self.upload(image("c"), version="2.0.0")
        ro = self.api("POST", "/api/v1/rollouts", {
            "release": rel["id"], "phases": [10, 50, 100], "silent_after": 60, "soak": 3600,
            "success_threshold": 50, "error_threshold": 100}, status=201)
        rid = ro["id"]
        # A fresh rollout: every count 0, every phase listed.
        self.assertEqual(ro["counts"], dict({k: 0 for k in KINDS}, offered=0))
        self.assertEqual([(p["phase"], p["percent"], p["status"]) for p in ro["phase_counts"]],
                         [(0, 10, "current"), (1, 50, "next"), (2, 100, "next")])
        self.assertEqual(ro["phase_counts"][0]["started_ms"], ro["phase_started_ms"])
        self.assertIsNone(ro["phase_counts"][1]["started"])
        self.assertEqual((ro["gates"]["success_now"], ro["gates"]["error_now"],
                          ro["gates"]["verdict"]), (0.0, 0.0, "wait"))
        self.assertGreater(ro["gates"]["soak_left"], 3500)

        now = int(time.time() * 1000)
        # Offers: (phase, stored state, offered how long ago in ms) for each device.
        plan = []
        states = [OFFERED, DOWNLOADING, DOWNLOADED, CONFIRMED, REVERTED, FAILED, NONE]
        for i in range(34):
            phase = 0 if i < 6 else 1 if i < 20 else 2
            age = 120000 if i % 5 == 0 else 1000  # past silent_after (60 s) or not
            plan.append((i, phase, states[i % len(states)], age))
        statements = [("UPDATE devices SET offer_rule = ?, state = ?, offer_ms = ?, "
                       "state_ms = ? WHERE key = ?",
                       (rule_code(rid, ph), st, now - age, now - age, mac(i)))
                      for i, ph, st, age in plan]
        # Not this rollout's: another rollout, a pin of release rid, a rule.
        statements += [
            ("UPDATE devices SET offer_rule = ?, state = 1, offer_ms = ? WHERE key = ?",
             (rule_code(rid + 1, 0), now, mac(35))),
            ("UPDATE devices SET offer_rule = ?, state = 1, offer_ms = ? WHERE key = ?",
             (rule_code(rid, 15), now, mac(36))),
            ("UPDATE devices SET offer_rule = 0, state = 4, offer_ms = ? WHERE key = ?",
             (now, mac(37))),
        ]
        self.sql(statements)

        def kind(state, age):
            if state == CONFIRMED:
                return "confirmed"
            if state == REVERTED:
                return "reverted"
            if state == FAILED:
                return "failed"
            if state in (OFFERED, DOWNLOADING, DOWNLOADED):
                return "silent" if age > 60000 else "pending"
            return "withdrawn"

        want = [collections.Counter() for _ in range(3)]
        for i, ph, st, age in plan:
            want[ph][kind(st, age)] += 1
        total = sum(want, collections.Counter())

        def expect(counts, c):
            self.assertEqual(counts, dict({k: c[k] for k in KINDS}, offered=sum(c.values())))

        shown = self.api("GET", "/api/v1/rollouts/%d" % rid, token=READ_TOKEN)
        listed = [r for r in self.api("GET", "/api/v1/rollouts")["rollouts"] if r["id"] == rid][0]
        for ro in (shown, listed):
            expect(ro["counts"], total)
            for ph in range(3):
                expect({k: v for k, v in ro["phase_counts"][ph].items()
                        if k in KINDS or k == "offered"}, want[ph])
            # The phases add up exactly to the totals.
            for k in KINDS + ("offered",):
                self.assertEqual(sum(p[k] for p in ro["phase_counts"]), ro["counts"][k], k)
            offered = sum(total.values())
            errors = total["reverted"] + total["failed"] + total["silent"]
            self.assertAlmostEqual(ro["gates"]["success_now"],
                                   int(total["confirmed"] * 10000 / offered) / 100)
            self.assertAlmostEqual(ro["gates"]["error_now"], int(errors * 10000 / offered) / 100)
            self.assertEqual(ro["gates"]["verdict"], "wait")  # soaking
            self.assertIsNone(ro["gates"]["why"])

        # Advanced: the first phase passed; a move answers with the counts too.
        moved = self.api("POST", "/api/v1/rollouts/%d/advance" % rid)
        self.assertEqual([p["status"] for p in moved["phase_counts"]],
                         ["passed", "current", "next"])
        expect(moved["counts"], total)
        # Completed: every phase passed, no verdict.
        self.api("POST", "/api/v1/rollouts/%d/advance" % rid)
        done = self.api("POST", "/api/v1/rollouts/%d/advance" % rid)
        self.assertEqual(done["state"], "completed")
        self.assertEqual([p["status"] for p in done["phase_counts"]], ["passed"] * 3)
        self.assertIsNone(done["gates"]["verdict"])
        expect(done["counts"], total)

    def test_verdict_awaiting_approval(self):
        """Soaked (soak 0), enough confirmed, approval asked: the verdict
        says so and the rollout stays where it is."""
        self.checks([(mac(100 + i), "SONOFF", "1.0.0") for i in range(4)])
        rel = self.upload(image("a"), version="2.1.0")
        ro = self.api("POST", "/api/v1/rollouts", {
            "release": rel["id"], "soak": 0, "approval": True, "success_threshold": 50,
            "error_threshold": 100}, status=201)
        now = int(time.time() * 1000)
        self.sql([("UPDATE devices SET offer_rule = ?, state = ?, offer_ms = ? WHERE key = ?",
                   (rule_code(ro["id"], 0), CONFIRMED if i < 3 else REVERTED, now,
                    mac(100 + i))) for i in range(4)])
        shown = self.api("GET", "/api/v1/rollouts/%d" % ro["id"])
        g = shown["gates"]
        self.assertEqual((g["success_now"], g["error_now"], g["soak_left"], g["verdict"]),
                         (75.0, 25.0, 0, "awaiting approval"))
        self.assertIn("3 of 4 offered confirmed", g["why"])
        self.assertEqual((shown["state"], shown["phase"]), ("running", 0))


class DeviceControlsTest(ControlsServer):
    def setUp(self):
        super().setUp()
        self.rel = self.upload(image("p"), version="2.0.0")
        self.light = self.upload(image("l"), device="LIGHT", version="1.5.0")
        self.checks([(mac(1), "SONOFF", "1.0.0"), (mac(2), "LIGHT", "1.0.0")])

    def device(self, key, token=READ_TOKEN):
        return self.api("GET", "/api/v1/devices/%s" % key, token=token)

    def stored(self, key):
        return self.query("SELECT pin_release, excluded FROM devices WHERE key = ?", (key,))[0]

    def generation(self):
        rows = self.query("SELECT value FROM settings WHERE name = 'controls'")
        return rows[0][0] if rows else 0

    def test_pin_and_exclude_round_trips(self):
        key = mac(1)
        dev = self.device(key)
        self.assertEqual((dev["pin"], dev["excluded"]), (None, False))
        gen = self.generation()
        out = self.api("POST", "/api/v1/devices/%s/pin" % key.lower().replace(":", "-"),
                       {"release": self.rel["id"]})
        self.assertEqual(out["pin"], {"release": self.rel["id"], "version": "2.0.0"})
        self.assertNotIn("history", out)
        self.assertEqual(self.device(key)["pin"], out["pin"])
        row = [d for d in self.api("GET", "/api/v1/devices")["devices"] if d["key"] == key][0]
        self.assertEqual((row["pin"], row["excluded"]), (out["pin"], False))
        self.assertEqual(self.stored(key), (self.rel["id"], 0))
        self.assertGreater(self.generation(), gen)  # the watcher will read them again
        out = self.api("POST", "/api/v1/devices/%s/exclude" % key)
        self.assertEqual((out["excluded"], out["pin"]["release"]), (True, self.rel["id"]))
        self.assertEqual(self.stored(key), (self.rel["id"], 1))
        # Kept across a restart.
        self.assertEqual(self.srv.stop(), 0)
        self.start()
        dev = self.device(key)
        self.assertEqual((dev["pin"]["release"], dev["excluded"]), (self.rel["id"], True))
        out = self.api("DELETE", "/api/v1/devices/%s/pin" % key)
        self.assertIsNone(out["pin"])
        out = self.api("DELETE", "/api/v1/devices/%s/exclude" % key)
        self.assertFalse(out["excluded"])
        self.assertEqual(self.stored(key), (0, 0))
        # Idempotent: unpinning an unpinned device is fine.
        self.assertIsNone(self.api("DELETE", "/api/v1/devices/%s/pin" % key)["pin"])
        entries = [(e["action"], e["status"], e["token"]) for e in reversed(self.audit())
                   if e["action"].startswith("device.")]
        self.assertEqual(entries, [("device.pin", 200, "ops"), ("device.exclude", 200, "ops"),
                                   ("device.unpin", 200, "ops"), ("device.include", 200, "ops"),
                                   ("device.unpin", 200, "ops")])
        self.assertIn("pin to release %d" % self.rel["id"],
                      [e for e in self.audit() if e["action"] == "device.pin"][0]["target"])

    def test_bad_pins_and_read_tokens(self):
        key = mac(1)
        pin = "/api/v1/devices/%s/pin" % key
        cases = [
            (pin, {"release": self.light["id"]}, 400, "release", "is for device type LIGHT"),
            (pin, {"release": 99999}, 400, "release", "no release 99999"),
            (pin, {}, 400, "release", "release is missing"),
            (pin, {"release": "1"}, 400, "release", "must be an integer"),
            (pin, {"release": 0}, 400, "release", "from 1 to"),
            (pin, {"release": 1, "version": "2"}, 400, "version", 'unknown field "version"'),
            (pin, b"", 400, "body", "the body is empty"),
            (pin, b"[1]", 400, "body", "must be a JSON object"),
            ("/api/v1/devices/5C:CF:7F:99:99:99/pin", {"release": self.rel["id"]}, 404, "key",
             "no device"),
            ("/api/v1/devices/nonsense/pin", {"release": self.rel["id"]}, 400, "key",
             "is not a device key"),
            (pin + "?x=1", {"release": self.rel["id"]}, 400, "x", "x"),
        ]
        for path, body, status, field, words in cases:
            with self.subTest(path=path, body=body):
                out = self.api("POST", path, body, status=status)
                self.assertEqual(out.get("parameter"), field, out)
                self.assertIn(words, out["error"])
        for method, path in (("DELETE", pin), ("POST", "/api/v1/devices/%s/exclude" % key),
                             ("DELETE", "/api/v1/devices/%s/exclude" % key)):
            out = self.api(method, "/api/v1/devices/5C:CF:7F:99:99:99/" + path.split("/")[-1],
                           status=404)
            self.assertEqual(out["parameter"], "key")
        self.assertEqual(self.stored(key), (0, 0))
        # A read token may not write any of them.
        writes = [("POST", pin, {"release": self.rel["id"]}), ("DELETE", pin, None),
                  ("POST", "/api/v1/devices/%s/exclude" % key, None),
                  ("DELETE", "/api/v1/devices/%s/exclude" % key, None)]
        for method, path, body in writes:
            with self.subTest(method=method, path=path):
                out = self.api(method, path, body, token=READ_TOKEN, status=403)
                self.assertIn("read role", out["error"])
        self.assertEqual(self.stored(key), (0, 0))
        got = [(e["action"], e["status"], e["token"]) for e in self.audit()[:4]]
        self.assertEqual(got[::-1], [("device.pin", 403, "grafana"),
                                     ("device.unpin", 403, "grafana"),
                                     ("device.exclude", 403, "grafana"),
                                     ("device.include", 403, "grafana")])
        # Every refused write is in the log too, with its status.
        statuses = collections.Counter(e["status"] for e in self.audit()
                                       if e["action"] == "device.pin")
        self.assertEqual(statuses, {400: 10, 404: 1, 403: 1})

    def test_pinned_release_is_kept_and_listed(self):
        """A release devices are pinned to cannot be deleted; the list finds
        pinned and excluded devices without one request per device."""
        other = self.upload(image("p2"), version="2.0.1")
        self.checks([(mac(1), "SONOFF", "1.0.0"), (mac(2), "LIGHT", "1.0.0"),
                     (mac(3), "SONOFF", "1.0.0"), (mac(4), "SONOFF", "1.0.0")])
        for i in (1, 3):
            self.api("POST", "/api/v1/devices/%s/pin" % mac(i), {"release": other["id"]})
        self.api("POST", "/api/v1/devices/%s/pin" % mac(4), {"release": self.rel["id"]})
        self.api("POST", "/api/v1/devices/%s/exclude" % mac(3))
        self.api("POST", "/api/v1/devices/%s/exclude" % mac(2))

        def keys(query):
            return sorted(d["key"] for d in
                          self.api("GET", "/api/v1/devices?" + query, token=READ_TOKEN)["devices"])
        self.assertEqual(keys("pin=%d" % other["id"]), [mac(1), mac(3)])
        self.assertEqual(keys("pin=any"), [mac(1), mac(3), mac(4)])
        self.assertEqual(keys("excluded=true"), [mac(2), mac(3)])
        self.assertEqual(keys("excluded=false"), [mac(1), mac(4)])
        self.assertEqual(keys("pin=any&excluded=false&type=SONOFF"), [mac(1), mac(4)])
        self.assertEqual(self.api("GET", "/api/v1/devices?pin=any")["total"], 3)
        for query, words in (("pin=0", "is not a release id"), ("pin=x", "or any"),
                             ("excluded=yes", "is not true or false")):
            out = self.api("GET", "/api/v1/devices?" + query, status=400)
            self.assertEqual(out["parameter"], query.split("=")[0])
            self.assertIn(words, out["error"])
        out = self.api("DELETE", "/api/v1/releases/%d" % other["id"], status=409)
        self.assertEqual(out["parameter"], "id")
        self.assertIn("is pinned on 2 devices: unpin them first", out["error"])
        self.assertEqual(self.device(mac(1))["pin"], {"release": other["id"],
                                                      "version": "2.0.1"})
        for i in (1, 3):
            self.api("DELETE", "/api/v1/devices/%s/pin" % mac(i))
        self.api("DELETE", "/api/v1/releases/%d" % other["id"])
        self.assertEqual(keys("pin=any"), [mac(4)])

    @unittest.skipUnless(NOFUSS, "NOFUSS (the nofuss tool) not set")
    def test_cli(self):
        env = dict(os.environ, NOFUSS_TOKEN=ADMIN_TOKEN)
        key = mac(1)

        def run(*args, rc=0, token=ADMIN_TOKEN):
            out = subprocess.run([NOFUSS, "devices"] + list(args) +
                                 ["--server", "http://127.0.0.1:%d" % self.port],
                                 capture_output=True, text=True, timeout=60,
                                 env=dict(env, NOFUSS_TOKEN=token))
            self.assertEqual(out.returncode, rc, out.stderr + out.stdout)
            return out

        out = run("pin", key.lower(), str(self.rel["id"]))
        self.assertEqual(out.stdout, "%s: pinned to release %d (2.0.0)\n" % (key, self.rel["id"]))
        self.assertEqual(self.stored(key)[0], self.rel["id"])
        shown = run("show", key).stdout
        self.assertIn("pin            release %d (2.0.0)" % self.rel["id"], shown)
        self.assertIn("excluded       no", shown)
        self.assertEqual(run("exclude", key).stdout, "%s: excluded from rollouts\n" % key)
        self.assertIn("excluded       yes", run("show", key).stdout)
        self.assertEqual(json.loads(run("include", key, "--json").stdout)["excluded"], False)
        self.assertEqual(run("unpin", key).stdout, "%s: not pinned\n" % key)
        self.assertEqual(run("tag", key, "attic").stdout, "%s: tag attic added\n" % key)
        self.assertEqual(self.device(key)["tags"], ["attic"])
        self.assertEqual(run("untag", key, "attic").stdout, "%s: tag attic removed\n" % key)
        self.assertEqual(self.device(key)["tags"], [])
        self.assertEqual(self.stored(key), (0, 0))
        # Refusals: the server's message, and the exit statuses.
        out = run("pin", key, str(self.light["id"]), rc=1)
        self.assertIn("is for device type LIGHT", out.stderr)
        run("pin", "5C:CF:7F:99:99:99", str(self.rel["id"]), rc=5)
        run("exclude", key, rc=4, token=READ_TOKEN)
        run("pin", key, "x", rc=2)
        run("pin", key, rc=2)
        run("unpin", key, "3", rc=2)
        run("tag", key, rc=2)
        self.assertEqual(self.stored(key), (0, 0))
        run("pin", key, str(self.rel["id"]))
        out = run("--pin", str(self.rel["id"]), "--excluded", "false")
        self.assertIn(key, out.stdout)
        self.assertIn("1 of 1 devices", out.stdout)
        self.assertIn("0 of 0 devices", run("--pin", "any", "--excluded", "true").stdout)
        run("unpin", key)
        actions = [e["action"] for e in reversed(self.audit()) if e["action"].startswith("dev")]
        self.assertEqual(actions, ["device.pin", "device.exclude", "device.include",
                                   "device.unpin", "device.tag", "device.untag", "device.pin",
                                   "device.pin", "device.exclude", "device.pin",
                                   "device.unpin"])


class RolloutCliTest(ControlsServer):
    def nofuss(self, *args, rc=0, timeout=60):
        out = subprocess.run([NOFUSS, "rollout"] + list(args) +
                             ["--server", "http://127.0.0.1:%d" % self.port],
                             capture_output=True, text=True, timeout=timeout,
                             env=dict(os.environ, NOFUSS_TOKEN=ADMIN_TOKEN))
        self.assertEqual(out.returncode, rc, out.stderr + out.stdout)
        return out

    @unittest.skipUnless(NOFUSS, "NOFUSS (the nofuss tool) not set")
    def test_start_show_and_watch(self):
        # Checks first (none after), and approval: no watcher moves it.
        self.checks([(mac(50 + i), "SONOFF", "1.0.0") for i in range(5)])
        rel = self.upload(image("cli"), version="2.0.0")
        out = self.nofuss("start", "--release", str(rel["id"]), "--phases", "10,100",
                          "--window", "22:00-05:00", "--rate", "30", "--soak", "0",
                          "--error", "100", "--approval", "--json")
        ro = json.loads(out.stdout)
        self.assertEqual((ro["window"], ro["rate"]), ("22:00-05:00", 30))
        rid = ro["id"]
        now = int(time.time() * 1000)
        self.sql([("UPDATE devices SET offer_rule = ?, state = ?, offer_ms = ? WHERE key = ?",
                   (rule_code(rid, 0), CONFIRMED if i < 4 else FAILED, now, mac(50 + i)))
                  for i in range(5)])
        shown = self.nofuss("show", str(rid)).stdout
        self.assertIn("window         22:00-05:00", shown)
        self.assertIn("rate           30 new offers a minute at most", shown)
        lines = shown.splitlines()
        head = [l for l in lines if l.split()[:3] == ["PHASE", "PERCENT", "STATUS"]]
        self.assertEqual(len(head), 1, shown)
        rows = {l.split()[0]: l.split() for l in lines if l.split() and
                l.split()[0] in ("1", "2", "total")}
        # offered pending confirmed reverted failed silent withdrawn
        self.assertEqual(rows["1"], ["1", "10%", "current", "5", "0", "4", "0", "1", "0", "0"])
        self.assertEqual(rows["2"], ["2", "100%", "next", "0", "0", "0", "0", "0", "0", "0"])
        self.assertEqual(rows["total"], ["total", "5", "0", "4", "0", "1", "0", "0"])
        self.assertIn("confirmed 80.00% (passes at 95.00%), errors 20.00% (halts above "
                      "100.00%), soak left 0 s", shown)
        self.assertIn("verdict        wait", shown)
        # A bad window is the server's 400, printed as is.
        other = self.upload(image("cli2"), version="2.0.1")
        out = self.nofuss("start", "--release", str(other["id"]), "--window", "05:00-05:00",
                          rc=1)
        self.assertIn("is empty", out.stderr)
        self.nofuss("start", "--release", str(other["id"]), "--rate", "x", rc=2)
        self.nofuss("list", "--watch", rc=2)
        self.nofuss("show", str(rid), "--deadline", "1", rc=2)

        # --watch, not on a terminal: one line per change, until it ends.
        out = self.nofuss("show", str(rid), "--watch", "--deadline", "1.5", rc=7)
        self.assertIn("--deadline passed", out.stderr)
        first = out.stdout.splitlines()
        self.assertEqual(len(first), 1, out.stdout)  # nothing changed: one line
        self.assertNotIn("\r", out.stdout)
        self.assertIn("rollout %d running: phase 1/2 (10%%), offered 5, confirmed 4 (80.00%%), "
                      "errors 1 (20.00%%), pending 0, soak left 0 s: wait" % rid, first[0])
        proc = subprocess.Popen([NOFUSS, "rollout", "show", str(rid), "--watch", "--deadline",
                                 "30", "--server", "http://127.0.0.1:%d" % self.port],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, NOFUSS_TOKEN=ADMIN_TOKEN))
        try:
            time.sleep(1.5)
            self.api("POST", "/api/v1/rollouts/%d/advance" % rid)
            time.sleep(1.5)
            self.api("POST", "/api/v1/rollouts/%d/advance" % rid)  # completed
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, stderr + stdout)
        lines = stdout.splitlines()
        self.assertIn("phase 1/2 (10%)", lines[0])
        self.assertTrue(any("running: phase 2/2 (100%)" in l for l in lines), stdout)
        self.assertIn("completed", lines[-1])
        self.assertEqual(len(lines), len(set(lines)), "a line printed twice: " + stdout)
        # On a terminal the line is redrawn in place: \r, the line, the rest cleared.
        master, slave = pty.openpty()
        try:
            proc = subprocess.run([NOFUSS, "rollout", "show", str(rid), "--watch", "--server",
                                   "http://127.0.0.1:%d" % self.port], stdout=slave,
                                  stderr=subprocess.PIPE, timeout=30,
                                  env=dict(os.environ, NOFUSS_TOKEN=ADMIN_TOKEN))
            self.assertEqual(proc.returncode, 0, proc.stderr)
            shown = b""
            while select.select([master], [], [], 0.5)[0]:
                shown += os.read(master, 65536)
        finally:
            os.close(master)
            os.close(slave)
        self.assertTrue(shown.startswith(b"\rrollout %d completed: phase 2/2" % rid), shown)
        self.assertIn(b"\x1b[K", shown)
        # Ended halted or aborted: exit 6 with the reason.
        out = self.nofuss("start", "--release", str(other["id"]), "--json")
        oid = json.loads(out.stdout)["id"]
        self.api("POST", "/api/v1/rollouts/%d/abort" % oid)
        out = self.nofuss("show", str(oid), "--watch", "--deadline", "10", rc=6)
        self.assertIn("aborted: abort by token ops", out.stdout)


if __name__ == "__main__":
    unittest.main()
