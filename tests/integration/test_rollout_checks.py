"""What an operator does to a running rollout, seen from a device (issue 10
items 3, 4, 5, 7; docs/ROLLOUTS.md section 3): real nofussd with a SQLite
store and its admin API, header-form checks as a NoFUSS client sends them.
Pause, resume, halt and abort reach the check path within a second; a
restart resumes a rollout exactly; a pin beats versions.json and every
rollout, an exclusion keeps a device out, tags narrow a rollout; a
versions.json rule answers first and the rollout says it is shadowed; a
time window that is closed, then opens."""
import json
import os
import signal
import subprocess
import time
import unittest

from harness import check_headers, get, wait_until
from test_releases import ADMIN_TOKEN, NOFUSS, READ_TOKEN, ReleaseServer, image

DEVICE = "SONOFF"
MAC = "5C:CF:7F:00:00:01"


class ControlsServer(ReleaseServer):
    """A release of DEVICE at 2.0.0, and helpers; no tests."""

    def setUp(self):
        super().setUp()
        self.rel = self.upload(image("fw-2.0.0"), device=DEVICE, version="2.0.0")

    def check(self, mac=MAC, version="1.0.0", device=DEVICE):
        r = get(self.srv.port, "/", check_headers(mac, device, version))
        self.assertEqual(r.status, 200)
        return json.loads(r.body.decode())

    def offered(self, mac=MAC, version="1.0.0", device=DEVICE):
        return self.check(mac, version, device).get("version")

    def start_rollout(self, **body):
        body.setdefault("release", self.rel["id"])
        body.setdefault("phases", [100])
        st, out, _ = self.request("POST", "/api/v1/rollouts", json.dumps(body).encode())
        self.assertEqual(st, 201, out)
        return out["id"]

    def act(self, rid, action):
        st, out, _ = self.request("POST", "/api/v1/rollouts/%d/%s" % (rid, action), b"")
        self.assertEqual(st, 200, out)
        return out

    def until_offered(self, want, timeout=5.0, **kw):
        """Seconds until the check's offer is want (polled every 20 ms)."""
        t0 = time.monotonic()
        got = wait_until(lambda: self.offered(**kw) == want, timeout=timeout, step=0.02)
        self.assertTrue(got, "still offered %r, not %r\n%s" % (self.offered(**kw), want, self.srv.stderr()[-3000:]))
        return time.monotonic() - t0


class ControlsTest(ControlsServer):

    def test_pause_resume_halt_abort_and_restart(self):
        rid = self.start_rollout(soak=3600)
        self.until_offered("2.0.0")
        self.act(rid, "pause")
        paused = self.until_offered(None)
        self.act(rid, "resume")
        self.until_offered("2.0.0")
        self.act(rid, "halt")
        halted = self.until_offered(None)
        self.act(rid, "resume")
        self.until_offered("2.0.0")
        # A restart resumes it exactly: state, phase, and the same devices.
        before = self.request("GET", "/api/v1/rollouts/%d" % rid, token=READ_TOKEN)[1]
        self.assertEqual(self.srv.stop(), 0)
        self.start()
        after = self.request("GET", "/api/v1/rollouts/%d" % rid, token=READ_TOKEN)[1]
        for k in ("state", "phase", "phase_started", "state_since", "percent"):
            self.assertEqual(before.get(k), after.get(k), k)
        self.until_offered("2.0.0")
        # The overview (one answer for a fleet page) lists it while not over.
        st, ov, _ = self.request("GET", "/api/v1/overview", token=READ_TOKEN)
        self.assertEqual(st, 200, ov)
        self.assertEqual([r["id"] for r in ov["rollouts"]], [rid])
        self.assertEqual(ov["summary"]["devices"], 1)
        self.assertEqual(ov["not_seen"], {"day": 0, "week": 0})
        self.act(rid, "abort")
        aborted = self.until_offered(None)
        self.assertEqual(self.request("GET", "/api/v1/overview", token=READ_TOKEN)[1]["rollouts"],
                         [])
        print("\noffers stop after pause %.2f s, halt %.2f s, abort %.2f s" %
              (paused, halted, aborted))
        for t in (paused, halted, aborted):
            self.assertLess(t, 1.0)

    def test_phase_selection_and_advance(self):
        # 200 MACs at 10%: about 20 offered, the others not until 100%.
        macs = ["5C:CF:7F:00:01:%02X" % i for i in range(200)]
        rid = self.start_rollout(phases=[10, 100], soak=3600)
        wait_until(lambda: self.offered(macs[0]) is not None or
                   any(self.offered(m) for m in macs[:30]), timeout=5)
        first = {m for m in macs if self.offered(m) == "2.0.0"}
        self.assertTrue(5 <= len(first) <= 45, len(first))
        self.act(rid, "advance")
        self.until_offered("2.0.0", mac=next(m for m in macs if m not in first))
        self.assertEqual({m for m in macs if self.offered(m) == "2.0.0"}, set(macs))
        # Already on the release: nothing; newer without a version range: nothing.
        self.assertIsNone(self.offered(macs[0], version="2.0.0"))
        self.assertIsNone(self.offered(macs[0], version="3.0.0"))

    def test_completed_rollouts_offer_late_devices_until_halted(self):
        # A completed rollout offers its release to devices that check in
        # late; a newer completed one takes over; halting it ends every
        # offer, and never brings the older one's release back.
        first = self.start_rollout(soak=0)
        self.assertEqual(self.act(first, "advance")["state"], "completed")
        self.until_offered("2.0.0", mac="5C:CF:7F:00:03:01")
        rel3 = self.upload(image("fw-3.0.0"), device=DEVICE, version="3.0.0")
        second = self.start_rollout(release=rel3["id"], soak=0)
        self.assertEqual(self.act(second, "advance")["state"], "completed")
        self.until_offered("3.0.0", mac="5C:CF:7F:00:03:02")
        self.act(second, "halt")
        self.until_offered(None, mac="5C:CF:7F:00:03:03")
        time.sleep(1)  # several watcher rounds: still nothing
        self.assertIsNone(self.offered(mac="5C:CF:7F:00:03:03"))
        # The first offers nothing any more: there is nothing to halt.
        st, out, _ = self.request("POST", "/api/v1/rollouts/%d/halt" % first, b"")
        self.assertEqual(st, 409, out)
        self.assertIn("offers nothing any more", out["error"])
        st, out, _ = self.request("POST", "/api/v1/rollouts/halt-all", b"")
        self.assertEqual((st, out["halted"]), (200, 0), out)
        # Resumed, the second completes again and offers again.
        self.act(second, "resume")
        self.until_offered("3.0.0", mac="5C:CF:7F:00:03:04")

    def test_empty_phase_passes_only_once_devices_show_it(self):
        # Six devices known, none of them in the 1% phase (the bucket is a
        # stable hash of the MAC and the rollout, and this store's first
        # rollout is always 1). Until enough of them check in, the phase
        # has offered nothing because the fleet is away, not because it is
        # empty: passing it would offer the release to all of them at once.
        macs = ["5C:CF:7F:00:02:%02X" % i for i in range(6)]
        for m in macs:
            self.assertIsNone(self.offered(m))
        self.assertTrue(wait_until(lambda: self.request(
            "GET", "/api/v1/devices?limit=10", token=READ_TOKEN)[1]["total"] == 6))
        rid = self.start_rollout(phases=[1, 100], soak=0)

        def rollout():
            return self.request("GET", "/api/v1/rollouts/%d" % rid, token=READ_TOKEN)[1]
        self.assertTrue(wait_until(lambda: rollout()["gates"]["why"] is not None, timeout=5))
        time.sleep(1.5)  # several watcher rounds: still phase 1
        ro = rollout()
        self.assertEqual((ro["state"], ro["phase"]), ("running", 0), ro)
        self.assertIn("phase 1 (1%) has offered nothing: 0 of the 6 SONOFF devices known "
                      "checked in since it began, 3 needed to pass it empty", ro["gates"]["why"])
        # Two check in, none picked: not yet.
        for m in macs[:2]:
            self.assertIsNone(self.offered(m), "%s is in the 1%% phase: pick another MAC" % m)
        time.sleep(1.5)
        self.assertEqual(rollout()["phase"], 0)
        # The third shows the phase empty: the rollout goes on to 100%.
        self.assertIsNone(self.offered(macs[2]))
        self.assertTrue(wait_until(lambda: rollout()["phase"] == 1, timeout=5), rollout())
        self.until_offered("2.0.0", mac=macs[5])

    def test_empty_phase_never_passes_while_its_window_is_closed(self):
        # Devices checking in while the window is closed were not offered
        # because of the window: they show nothing about the phase.
        t = time.localtime(time.time() + 7200)
        end_t = time.localtime(time.time() + 7800)
        window = "%02d:%02d-%02d:%02d" % (t.tm_hour, t.tm_min, end_t.tm_hour, end_t.tm_min)
        rid = self.start_rollout(phases=[1, 100], soak=0, window=window)
        macs = ["5C:CF:7F:00:04:%02X" % i for i in range(6)]
        for m in macs:
            self.assertIsNone(self.offered(m))
        time.sleep(1.5)  # several watcher rounds
        ro = self.request("GET", "/api/v1/rollouts/%d" % rid, token=READ_TOKEN)[1]
        self.assertEqual((ro["state"], ro["phase"]), ("running", 0), ro)
        self.assertIn("has offered nothing, and its window is closed", ro["gates"]["why"])

    def decision(self, ok, mac=MAC):
        """The device's decision once ok(decision) holds (the store commits
        a check within its batch interval)."""
        got = {}

        def fetch():
            got["d"] = self.request("GET", "/api/v1/devices/%s/decision" % mac,
                                    token=READ_TOKEN)[1]
            return ok(got["d"])
        self.assertTrue(wait_until(fetch, timeout=5), got.get("d"))
        return got["d"]

    def token_file(self):
        path = os.path.join(self.data.path, "admin.token")
        with open(path, "w") as f:
            f.write(ADMIN_TOKEN + "\n")
        os.chmod(path, 0o600)
        return path

    def set_control(self, what, value, mac=MAC):
        """POST or DELETE /api/v1/devices/{key}/pin or /exclude."""
        if what == "pin_release":
            st, out, _ = self.request("POST" if value else "DELETE", "/api/v1/devices/%s/pin" % mac,
                                      json.dumps({"release": value}).encode() if value else b"")
        else:
            st, out, _ = self.request("POST" if value else "DELETE",
                                      "/api/v1/devices/%s/exclude" % mac, b"")
        self.assertEqual(st, 200, out)

    def test_offer_rate(self):
        # Two offers a minute: of five devices checking now, two are offered
        # and three deferred, with the reason in the store.
        rid = self.start_rollout(soak=3600, rate=2)
        macs = ["5C:CF:7F:00:02:%02X" % i for i in range(5)]
        wait_until(lambda: self.offered("5C:CF:7F:00:03:00") is not None, timeout=5)
        got = [self.offered(m) for m in macs]
        # The probe above took one of the two offers of this minute (or, at a
        # minute's turn, the count started over): one or two more here.
        self.assertIn(got.count("2.0.0"), (1, 2), got)
        deferred = [m for m, g in zip(macs, got) if g is None]
        d = self.decision(lambda d: d.get("answer") == "deferred", mac=deferred[-1])
        self.assertEqual(d["answer_target"], "2.0.0")
        self.assertEqual(d["answer_reason"], "rollout %d's offer rate (2 a minute) spent" % rid)

    def test_pin_exclude_and_tags(self):
        other = self.upload(image("fw-1.5.0"), device=DEVICE, version="1.5.0")
        self.check()  # the device exists
        rid = self.start_rollout(soak=3600)
        self.until_offered("2.0.0")
        # Excluded: no rollout offers it anything.
        self.set_control("excluded", 1)
        self.until_offered(None)
        # Pinned to 1.5.0: offered that, excluded or not; on it, nothing.
        self.set_control("pin_release", other["id"])
        self.until_offered("1.5.0")
        # The decision says which step answered, and would answer now.
        d = self.decision(lambda d: d["answer_source"] == {"from": "pin",
                                                            "release": other["id"]})
        chosen = [s for s in d["now"] if s["chosen"]]
        self.assertEqual([s["step"] for s in chosen], ["pin"], d["now"])
        self.assertIn("excluded", [s["step"] for s in d["now"]])
        out = subprocess.run([NOFUSS, "explain", "--server", "http://127.0.0.1:%d" % self.port,
                              "--token-file", self.token_file(), MAC], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("the pin to release %d" % other["id"], out.stdout)
        self.assertRegex(out.stdout, r"\* pin +pinned to release %d" % other["id"])
        self.assertIsNone(self.offered(version="1.5.0"))
        self.set_control("pin_release", 0)
        self.set_control("excluded", 0)
        self.until_offered("2.0.0")
        d = self.decision(lambda d: d["answer_source"] == {"from": "rollout", "rollout": rid,
                                                            "phase": 1})
        self.assertRegex([s for s in d["now"] if s["chosen"]][0]["detail"],
                         r"^bucket \d+ of 10000: phase 1 \(100%\): offered$")
        # Tags: a rollout for tag "attic" offers only tagged devices.
        self.act(rid, "abort")
        self.until_offered(None)
        rel3 = self.upload(image("fw-3.0.0"), device=DEVICE, version="3.0.0")
        self.start_rollout(release=rel3["id"], tags=["attic"], soak=3600)
        time.sleep(0.6)
        self.assertIsNone(self.offered())
        st, _, _ = self.request("POST", "/api/v1/devices/%s/tags/attic" % MAC, b"")
        self.assertEqual(st, 200)
        self.until_offered("3.0.0")

    def test_static_rule_answers_first_and_the_window(self):
        self.data.add_file("firmware/static.bin", image("static"))
        self.data.write_rules([{"origin": {"device": DEVICE, "mac": [MAC]},
                                "target": {"version": "1.9.0", "firmware": "/firmware/static.bin"}}])
        n = self.srv.line_count()
        self.srv.signal(signal.SIGHUP)
        self.srv.wait_for(r"reloaded .*: 1 rules", start=n)
        rid = self.start_rollout(soak=3600)
        st, ro, _ = self.request("GET", "/api/v1/rollouts/%d" % rid, token=READ_TOKEN)
        self.assertEqual(ro["shadowed_by"], [0])
        out = subprocess.run([NOFUSS, "rollout", "show", str(rid), "--server",
                              "http://127.0.0.1:%d" % self.port, "--token-file", self.token_file()],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("shadowed by    versions.json rules 0 (counted from 0)", out.stdout)
        # The rule answers its device first; the rollout everyone else.
        self.until_offered("2.0.0", mac="5C:CF:7F:00:00:02")
        self.assertEqual(self.offered(), "1.9.0")

        # A window that opens at the next minute of the server's local day.
        t = time.localtime(time.time() + 60 + (5 if time.localtime().tm_sec > 55 else 0))
        start = "%02d:%02d" % (t.tm_hour, t.tm_min)
        end_t = time.localtime(time.mktime(t) + 600)
        window = "%s-%02d:%02d" % (start, end_t.tm_hour, end_t.tm_min)
        rel3 = self.upload(image("fw-3.0.0", ), device="WINDOWED", version="3.0.0")
        self.start_rollout(release=rel3["id"], window=window, soak=3600)
        time.sleep(0.6)
        self.assertIsNone(self.offered(device="WINDOWED"))
        waited = self.until_offered("3.0.0", device="WINDOWED", timeout=70)
        print("\nwindow %s opened after %.1f s" % (window, waited))


if __name__ == "__main__":
    unittest.main()
