"""Rollouts that offer (issue 10 items 2, 3, 7; docs/ROLLOUTS.md section 3):
real nofussd with a SQLite store, releases uploaded through the admin API,
simulated fleets (`nofuss fleet`, the real device core) checking in. A good
release goes through every phase to completed and every device confirms; a
release that crashes at boot halts the rollout in its first phase and no
device outside that phase is ever offered it; each device is offered in the
phase its bucket (recomputed here from the documented hash) falls in."""
import json
import os
import sqlite3
import subprocess
import tempfile
import time
import unittest

from test_releases import ADMIN_TOKEN, NOFUSS, READ_TOKEN, ReleaseServer

DEVICE = "ROLL"
MASK64 = (1 << 64) - 1


def bucket(rollout_id, key):
    """docs/ROLLOUTS.md section 2: FNV-1a 64 of "ID:KEY", SplitMix64's
    finaliser, modulo 10,000."""
    h = 0xcbf29ce484222325
    for b in ("%d:%s" % (rollout_id, key)).encode():
        h = ((h ^ b) * 0x100000001b3) & MASK64
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & MASK64
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & MASK64
    h ^= h >> 31
    return h % 10000


def phase_of(rollout_id, key, phases):
    b = bucket(rollout_id, key)
    for i, p in enumerate(phases):
        if b < p * 100:
            return i
    return None


def decode_rule(rule):
    """store.h: a rollout's offer in phase p is -(2 + id * 16 + p)."""
    n = -rule - 2
    return (n // 16, n % 16) if rule <= -2 else None


def mac(i):
    return "5C:CF:7F:%02X:%02X:%02X" % ((i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF)


class RolloutFleet(ReleaseServer):
    """A store, an admin listener, and fleets of DEVICE at 1.0.0."""

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="nofuss-rollout-")

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            subprocess.run(["rm", "-rf", self.tmp], check=False)

    def mkimage(self, version, crash=False):
        path = os.path.join(self.tmp, "%s%s.bin" % (version, "-crash" if crash else ""))
        args = [NOFUSS, "mkimage", "--device", DEVICE, "--version", version, "--size", "16K",
                "-o", path] + (["--crash"] if crash else [])
        subprocess.run(args, check=True, timeout=30)
        with open(path, "rb") as f:
            return f.read()

    def start_rollout(self, body):
        st, out, _ = self.request("POST", "/api/v1/rollouts", json.dumps(body).encode())
        self.assertEqual(st, 201, out)
        return out

    def rollout(self, rid):
        st, out, _ = self.request("GET", "/api/v1/rollouts/%d" % rid, token=READ_TOKEN)
        self.assertEqual(st, 200, out)
        return out

    def fleet(self, n, until, *extra, interval=0.5, limit=120):
        """Runs n devices until until() is true (polled), at most limit
        seconds, then stops them (SIGTERM: transfers in flight finish)."""
        args = [NOFUSS, "fleet", "--server", "http://127.0.0.1:%d/" % self.srv.port,
                "--devices", str(n), "--device", DEVICE, "--version", "1.0.0",
                "--mac-base", mac(0), "--interval", str(interval), "--ramp", str(interval),
                "--reboot-delay", "0.2", "--duration", str(limit), "--timeout",
                str(limit + 30), "--seed", "7", "--json", "--quiet"] + list(extra)
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline and proc.poll() is None and not until():
                time.sleep(0.5)
            proc.terminate()
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertIn(proc.returncode, (0, 1), err[-3000:])
        return json.loads(out)

    def count(self, sql, *args):
        try:
            return self.rows(sql, *args)[0][0]
        except sqlite3.OperationalError:
            return 0  # not made yet

    def wait_state(self, rid, states, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ro = self.rollout(rid)
            if ro["state"] in states:
                return ro
            time.sleep(0.2)
        self.fail("rollout %d still %s after %d s" % (rid, ro["state"], timeout))

    def rows(self, sql, *args):
        db = sqlite3.connect(self.db, timeout=10)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def assert_api_counts(self, rid, per_phase):
        """The API's per-phase counts are the store's, and add up exactly."""
        ro = self.rollout(rid)
        self.assertEqual([p["offered"] for p in ro["phase_counts"]], per_phase)
        self.assertEqual(ro["counts"]["offered"], sum(per_phase))
        for k in ("pending", "confirmed", "reverted", "failed", "silent", "withdrawn"):
            self.assertEqual(sum(p[k] for p in ro["phase_counts"]), ro["counts"][k], k)
        return ro

    def settle(self):
        """Every event the server took is in the store."""
        self.assertEqual(self.srv.stop(), 0, self.srv.stderr())
        self.srv = None


class StagedRolloutTest(RolloutFleet):

    def test_phases_to_completed_every_device_confirmed(self):
        n = 400
        rel = self.upload(self.mkimage("2.0.0"), device=DEVICE, version="2.0.0")
        phases = [10, 50, 100]
        ro = self.start_rollout({"release": rel["id"], "phases": phases, "soak": 2,
                                 "silent_after": 60})
        rid = ro["id"]
        self.fleet(n, lambda: self.count(
            "SELECT COUNT(*) FROM devices WHERE version = '2.0.0' AND state = 4") == n)
        done = self.wait_state(rid, ("completed",), timeout=10)
        self.assertEqual(done["phase"], len(phases) - 1)
        devices = self.rows("SELECT key, version, state, offer_rule FROM devices")
        self.assertEqual(len(devices), n)
        per_phase = [0] * len(phases)
        for key, version, state, rule in devices:
            self.assertEqual((version, state), ("2.0.0", 4), key)  # 4: confirmed
            self.assertEqual(decode_rule(rule), (rid, phase_of(rid, key, phases)), key)
            per_phase[phase_of(rid, key, phases)] += 1
        self.assertEqual(sum(per_phase), n)
        ro = self.assert_api_counts(rid, per_phase)
        self.assertEqual(ro["counts"]["confirmed"], n)
        self.settle()
        # The first phase is about 10% of the fleet: the bucket hash spreads.
        self.assertTrue(20 <= per_phase[0] <= 60, per_phase)
        print("\nstaged rollout of %d devices: per phase %s" % (n, per_phase))


    def test_esphome_devices_from_their_own_addresses(self):
        # ESPHome sends no MAC: each device is ROLL@ITS-IP. With --source-ips
        # the 200 have 200 addresses, so the rollout picks among them by
        # their own buckets, as among devices on a real network; they tell
        # their version in the manifest URL, so every update is confirmed.
        n = 200
        rel = self.upload(self.mkimage("2.0.0"), device=DEVICE, version="2.0.0")
        phases = [10, 100]
        rid = self.start_rollout({"release": rel["id"], "phases": phases, "soak": 2,
                                  "silent_after": 60})["id"]
        self.fleet(n, lambda: self.count(
            "SELECT COUNT(*) FROM devices WHERE version = '2.0.0' AND state = 4") == n,
            "--client", "esphome", "--url-version", "--source-ips")
        self.wait_state(rid, ("completed",), timeout=10)
        devices = self.rows("SELECT key, version, state, offer_rule FROM devices")
        self.assertEqual(sorted(k for k, _, _, _ in devices),
                         sorted("%s@127.1.0.%d" % (DEVICE, i + 1) for i in range(n)))
        per_phase = [0] * len(phases)
        for key, version, state, rule in devices:
            self.assertEqual((version, state), ("2.0.0", 4), key)
            self.assertEqual(decode_rule(rule), (rid, phase_of(rid, key, phases)), key)
            per_phase[phase_of(rid, key, phases)] += 1
        self.assert_api_counts(rid, per_phase)
        self.assertTrue(5 <= per_phase[0] <= 40, per_phase)
        print("\nESPHome rollout of %d devices: per phase %s" % (n, per_phase))


class HaltTest(RolloutFleet):

    def test_crash_at_boot_halts_in_the_first_phase(self):
        n = 10000
        rel = self.upload(self.mkimage("2.0.0", crash=True), device=DEVICE, version="2.0.0")
        phases = [1, 10, 50, 100]
        ro = self.start_rollout({"release": rel["id"], "phases": phases, "soak": 2,
                                 "silent_after": 60})
        rid = ro["id"]
        self.fleet(n, lambda: self.rollout(rid)["state"] == "halted", "--concurrency", "64",
                   interval=3, limit=120)
        # A round of checks after the halt: none of them is offered anything.
        self.fleet(n, lambda: False, "--concurrency", "64", interval=3, limit=5)
        halted = self.wait_state(rid, ("halted",), timeout=5)
        self.assertEqual(halted["phase"], 0)
        self.assertIn("error gate", halted["reason"])
        self.settle()
        offered = self.rows("SELECT d.key, h.rule FROM history AS h JOIN devices AS d "
                            "ON d.id = h.device_id WHERE h.kind = 1")
        self.assertGreater(len(offered), 0)
        for key, rule in offered:
            # Only phase 0 devices were ever offered the release.
            self.assertEqual(decode_rule(rule), (rid, 0), key)
            self.assertEqual(phase_of(rid, key, phases), 0, key)
        # Every device that checked in runs the old version (under a sanitizer
        # not all 10,000 may have checked in before the halt stopped the fleet).
        versions = self.rows("SELECT version, COUNT(*) FROM devices GROUP BY version")
        self.assertEqual([v for v, _ in versions], ["1.0.0"], versions)
        self.assertGreater(versions[0][1], len({k for k, _ in offered}))
        reverted = self.rows("SELECT COUNT(*) FROM devices WHERE state = 5")[0][0]
        self.assertGreater(reverted, 0)
        print("\ncrash-at-boot release: %d devices offered before the halt, %d reverted; "
              "reason: %s" % (len({k for k, _ in offered}), reverted, halted["reason"]))


if __name__ == "__main__":
    unittest.main()


class TenThousandTest(RolloutFleet):
    """Issue 10's fleet: 10,000 devices through 1 -> 10 -> 50 -> 100%."""

    def test_ten_thousand_devices_four_phases(self):
        n = 10000
        rel = self.upload(self.mkimage("2.0.0"), device=DEVICE, version="2.0.0")
        phases = [1, 10, 50, 100]
        ro = self.start_rollout({"release": rel["id"], "phases": phases, "soak": 2,
                                 "silent_after": 120})
        rid = ro["id"]
        t0 = time.monotonic()
        summary = self.fleet(n, lambda: self.count(
            "SELECT COUNT(*) FROM devices WHERE version = '2.0.0' AND state = 4") == n,
            "--concurrency", "64", interval=3, limit=300)
        done = self.wait_state(rid, ("completed",), timeout=10)
        wall = time.monotonic() - t0
        per_phase = [0] * len(phases)
        states = {}
        for key, version, state, rule in self.rows(
                "SELECT key, version, state, offer_rule FROM devices"):
            want = phase_of(rid, key, phases)
            self.assertEqual(decode_rule(rule), (rid, want), key)
            per_phase[want] += 1
            states[(version, state)] = states.get((version, state), 0) + 1
        self.assertEqual(states, {("2.0.0", 4): n})
        self.assertEqual(sum(per_phase), n)
        self.assertEqual(self.assert_api_counts(rid, per_phase)["counts"]["confirmed"], n)
        self.settle()
        print("\n10,000-device rollout: completed in %.1f s (phase %d); per phase %s; "
              "fleet summary: %s" % (wall, done["phase"], per_phase,
                                     {k: summary.get(k) for k in ("updated", "failed", "checks")}))
