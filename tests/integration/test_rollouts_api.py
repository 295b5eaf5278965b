"""Rollouts through the admin API (issue 10 item 2, the part built so far:
docs/ROLLOUTS.md section 2): started from a JSON body checked field by
field, listed, shown, paused, resumed, advanced through their phases to
completed, halted and aborted, each move audited; a release with a rollout
that is not over cannot be deleted; everything survives a restart exactly.
Real nofussd, real SQLite store."""
import json
import os
import subprocess
import unittest

from test_releases import ADMIN_TOKEN, NOFUSS, READ_TOKEN, ReleaseServer, image

DEFAULT_GATES = {"success_threshold": 95.0, "error_threshold": 5.0, "soak": 3600,
                 "silent_after": 3600}


def thresholds(gates):
    """The gates' settings, without the figures judged now."""
    return {k: v for k, v in gates.items() if k in DEFAULT_GATES}


class RolloutsApiTest(ReleaseServer):
    def start_rollout(self, body, status=201, token=ADMIN_TOKEN):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        st, out, _ = self.request("POST", "/api/v1/rollouts", data, token)
        self.assertEqual(st, status, out)
        return out

    def act(self, rid, action, status=200, token=ADMIN_TOKEN):
        st, out, _ = self.request("POST", "/api/v1/rollouts/%d/%s" % (rid, action), b"", token)
        self.assertEqual(st, status, out)
        return out

    def test_start_defaults_and_moves(self):
        rel = self.upload(image("r1"), version="2.0.0")
        ro = self.start_rollout({"release": rel["id"]})
        self.assertEqual((ro["state"], ro["phase"], ro["percent"], ro["phases"]),
                         ("running", 0, 1, [1, 10, 50, 100]))
        self.assertEqual((ro["device"], ro["release"], ro["created_by"]),
                         ("SONOFF", rel["id"], "ops"))
        # No versions.json rule for SONOFF in the data folder: nothing shadows it.
        self.assertEqual(ro["shadowed_by"], [])
        self.assertEqual(thresholds(ro["gates"]), DEFAULT_GATES)
        self.assertFalse(ro["approval"])
        self.assertEqual(ro["filters"], {"min_version": None, "max_version": None, "tags": [],
                                         "macs": []})
        rid = ro["id"]
        st, shown, _ = self.request("GET", "/api/v1/releases/%d" % rel["id"], token=READ_TOKEN)
        self.assertEqual(shown["rollouts"], [{"id": rid, "state": "running"}])
        # One active rollout per release; the release cannot be deleted.
        body = self.start_rollout({"release": rel["id"]}, status=409)
        self.assertEqual(body["parameter"], "release")
        st, body, _ = self.request("DELETE", "/api/v1/releases/%d" % rel["id"])
        self.assertEqual((st, body["parameter"]), (409, "id"))
        self.assertIn("used by rollout %d" % rid, body["error"])
        # Moves, and the ones that do not apply.
        self.assertEqual(self.act(rid, "pause")["state"], "paused")
        self.act(rid, "pause", status=409)
        self.assertEqual(self.act(rid, "resume")["state"], "running")
        self.assertEqual(self.act(rid, "advance")["percent"], 10)
        self.assertEqual(self.act(rid, "advance")["percent"], 50)
        halted = self.act(rid, "halt")
        self.assertEqual((halted["state"], halted["reason"]), ("halted", "halt by token ops"))
        self.act(rid, "advance", status=409)
        self.act(rid, "resume")
        last = self.act(rid, "advance")
        self.assertEqual((last["phase"], last["percent"]), (3, 100))
        done = self.act(rid, "advance")
        self.assertEqual((done["state"], done["phase"]), ("completed", 3))
        # A completed rollout still offers the release to devices that check in
        # late: it can be halted, and aborted for good.
        halted = self.act(rid, "halt")
        self.assertEqual((halted["state"], halted["phase"]), ("halted", 3))
        self.assertEqual(self.act(rid, "abort")["state"], "aborted")
        body = self.act(rid, "abort", status=409)
        self.assertIn("is aborted", body["error"])
        self.act(rid, "explode", status=404)
        self.act(rid, "pause", token=READ_TOKEN, status=403)
        st, lst, _ = self.request("GET", "/api/v1/releases", token=READ_TOKEN)
        self.assertEqual(lst["releases"][0]["rollouts"], [{"id": rid, "state": "aborted"}])
        # Over: the release may go now.
        st, _, _ = self.request("DELETE", "/api/v1/releases/%d" % rel["id"])
        self.assertEqual(st, 200)
        actions = [(e["action"], e["status"]) for e in reversed(self.audit())
                   if e["action"].startswith("rollout")]
        self.assertEqual(actions, [("rollout.start", 201), ("rollout.start", 409)] +
                         [("rollout.action", s) for s in
                          (200, 409, 200, 200, 200, 200, 409, 200, 200, 200, 200, 200, 409,
                           404, 403)])

    def test_filters_gates_and_restart(self):
        rel = self.upload(image("r2"), version="3.0.0")
        spec = {"release": rel["id"], "phases": [5, 25, 100], "min_version": "1.0",
                "max_version": "2.9.9", "tags": ["attic", "lab"],
                "macs": ["5c-cf-7f-00-00-01", "5CCF7F000002"], "success_threshold": 90,
                "error_threshold": 2.5, "soak": 600, "silent_after": 1800, "approval": True}
        ro = self.start_rollout(spec)
        self.assertEqual(ro["filters"], {"min_version": "1.0", "max_version": "2.9.9",
                                         "tags": ["attic", "lab"],
                                         "macs": ["5C:CF:7F:00:00:01", "5C:CF:7F:00:00:02"]})
        self.assertEqual(thresholds(ro["gates"]), {"success_threshold": 90.0,
                                                   "error_threshold": 2.5, "soak": 600,
                                                   "silent_after": 1800})
        self.assertTrue(ro["approval"])
        self.act(ro["id"], "advance")
        self.act(ro["id"], "pause")
        st, before, _ = self.request("GET", "/api/v1/rollouts/%d" % ro["id"])
        self.assertEqual(self.srv.stop(), 0)
        self.start()
        st, after, _ = self.request("GET", "/api/v1/rollouts/%d" % ro["id"], token=READ_TOKEN)
        # The soak left counts down meanwhile; everything else is as it was.
        self.assertLessEqual(after["gates"].pop("soak_left"), before["gates"].pop("soak_left"))
        self.assertEqual(after, before)
        self.assertEqual((after["state"], after["percent"]), ("paused", 25))
        st, lst, _ = self.request("GET", "/api/v1/rollouts", token=READ_TOKEN)
        self.assertEqual([r["id"] for r in lst["rollouts"]], [ro["id"]])
        self.assertEqual(self.act(ro["id"], "abort")["state"], "aborted")

    @unittest.skipUnless(NOFUSS, "NOFUSS (the nofuss tool) not set")
    def test_cli(self):
        rel = self.upload(image("cli"), version="5.0.0")
        env = dict(os.environ, NOFUSS_TOKEN=ADMIN_TOKEN)

        def run(*args, rc=0):
            out = subprocess.run([NOFUSS, "rollout"] + list(args) +
                                 ["--server", "http://127.0.0.1:%d" % self.port],
                                 capture_output=True, text=True, timeout=60, env=env)
            self.assertEqual(out.returncode, rc, out.stderr + out.stdout)
            return out

        out = run("start", "--release", str(rel["id"]), "--phases", "2,20,100", "--tags",
                  "attic", "--success", "97.5", "--soak", "60", "--approval", "--json")
        ro = json.loads(out.stdout)
        self.assertEqual((ro["phases"], ro["filters"]["tags"], ro["gates"]["success_threshold"],
                          ro["gates"]["soak"], ro["approval"]),
                         ([2, 20, 100], ["attic"], 97.5, 60, True))
        rid = str(ro["id"])
        # Phases count from 1 for people (the API's "phase" from 0).
        self.assertIn("phase          1 of 3\n", run("show", rid).stdout)
        listed = [l.split() for l in run("list").stdout.splitlines()]
        self.assertEqual(listed[0], ["ID", "RELEASE", "DEVICE", "STATE", "PHASE", "PERCENT"])
        self.assertEqual(listed[1], [rid, str(rel["id"]), "SONOFF", "running", "1", "2%"])
        advanced = run("advance", rid).stdout
        self.assertIn("percent        20", advanced)
        self.assertIn("phase          2 of 3\n", advanced)
        self.assertIn("state          paused", run("pause", rid).stdout)
        out = run("pause", rid, rc=1)
        self.assertIn("is paused: it cannot be told to pause", out.stderr)
        out = run("start", "--release", str(rel["id"]), "--phases", "10,5", rc=1)
        self.assertIn("phases[1]", out.stderr)
        run("start", "--release", "x", rc=2)
        for args, words in ((["explode", rid], 'unknown action "explode": start, list, show'),
                            (["pause"], "pause takes one rollout ID"),
                            (["list", rid], "list takes no argument")):
            self.assertIn(words, run(*args, rc=2).stderr.splitlines()[0])
        run("show", "999", rc=5)
        self.assertIn("state          aborted", run("abort", rid).stdout)
        # Halt everything: every running or paused rollout, none other.
        rels = [self.upload(image("h%d" % i), version="6.0.%d" % i) for i in range(3)]
        ids = [self.start_rollout({"release": r["id"]})["id"] for r in rels]
        self.act(ids[1], "pause")
        self.act(ids[2], "abort")
        self.assertEqual(run("halt-all").stdout, "2 rollouts halted\n")
        states = {r["id"]: (r["state"], r["reason"]) for r in
                  self.request("GET", "/api/v1/rollouts")[1]["rollouts"]}
        self.assertEqual(states[ids[0]], ("halted", "halt-all by token ops"))
        self.assertEqual(states[ids[1]], ("halted", "halt-all by token ops"))
        self.assertEqual(states[ids[2]][0], "aborted")
        self.assertEqual(states[int(rid)][0], "aborted")
        st, body, _ = self.request("POST", "/api/v1/rollouts/halt-all", b"", READ_TOKEN)
        self.assertEqual(st, 403)
        self.assertEqual([(e["action"], e["status"]) for e in self.audit()[:2]],
                         [("rollout.halt-all", 403), ("rollout.halt-all", 200)])

    def test_bad_bodies_name_their_field(self):
        rel = self.upload(image("r3"), version="4.0.0")
        good = {"release": rel["id"]}
        cases = [
            (b"not json", "body", "not JSON"),
            (b"[]", "body", "must be a JSON object"),
            ({}, "release", "release is missing"),
            ({"release": "1"}, "release", "must be an integer"),
            ({"release": 999999}, "release", "no release 999999"),
            (dict(good, colour="red"), "colour", 'unknown field "colour"'),
            (dict(good, phases=[]), "phases", "1 to 10 elements"),
            (dict(good, phases=[10, 5]), "phases[1]", "phases must increase"),
            (dict(good, phases=[10, 10]), "phases[1]", "phases must increase"),
            (dict(good, phases=[50, 101]), "phases[1]", "from 1 to 100, not 101"),
            (dict(good, phases=[0, 50]), "phases[0]", "from 1 to 100, not 0"),
            (dict(good, success_threshold=101), "success_threshold", "from 0 to 100"),
            (dict(good, error_threshold=-1), "error_threshold", "from 0 to 100"),
            (dict(good, error_threshold="5%"), "error_threshold", "must be a number"),
            (dict(good, soak=1.5), "soak", "must be an integer"),
            (dict(good, silent_after=10), "silent_after", "from 60 to"),
            (dict(good, approval="yes"), "approval", "true or false"),
            (dict(good, min_version="x"), "min_version", "is not a version"),
            (dict(good, min_version="2.0", max_version="1.0"), "max_version",
             "below min_version"),
            (dict(good, tags=["a b"]), "tags[0]", "is not a tag"),
            (dict(good, macs=["5c:cf"]), "macs[0]", "12 to 17 bytes"),
            (dict(good, macs=["5c:cf:7f:00:00"]), "macs[0]", "is not a MAC"),
            (dict(good, macs=["zz:cf:7f:00:00:01"]), "macs[0]", "is not a MAC"),
        ]
        for body, field, words in cases:
            with self.subTest(field=field, words=words):
                out = self.start_rollout(body, status=400)
                self.assertEqual(out["parameter"], field, out)
                self.assertIn(words, out["error"])
        st, lst, _ = self.request("GET", "/api/v1/rollouts")
        self.assertEqual(lst["count"], 0)
        out = self.start_rollout(good, token=READ_TOKEN, status=403)
        self.assertIn("read role", out["error"])
        # Ids in the path: past 2^63 - 1 is refused, never read as the
        # largest id there is.
        for path in ("/api/v1/rollouts/9223372036854775808", "/api/v1/rollouts/0",
                     "/api/v1/releases/99999999999999999999", "/api/v1/rollouts/1x",
                     "/api/v1/audit?before=9223372036854775808"):
            with self.subTest(path=path):
                st, out, _ = self.request("GET", path, token=READ_TOKEN)
                self.assertEqual((st, out["parameter"]), (400, "before" if "audit" in path
                                                           else "id"), out)
                self.assertIn("positive integer below 2^63", out["error"])
        st, out, _ = self.request("GET", "/api/v1/rollouts/9223372036854775807",
                                  token=READ_TOKEN)
        self.assertEqual(st, 404, out)


if __name__ == "__main__":
    unittest.main()
