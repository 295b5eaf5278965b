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

    def fleet(self, n, duration, *extra, interval=0.5):
        args = [NOFUSS, "fleet", "--server", "http://127.0.0.1:%d/" % self.srv.port,
                "--devices", str(n), "--device", DEVICE, "--version", "1.0.0",
                "--mac-base", mac(0), "--interval", str(interval), "--ramp", str(interval),
                "--reboot-delay", "0.2", "--duration", str(duration), "--timeout",
                str(duration + 60), "--seed", "7", "--json", "--quiet"] + list(extra)
        r = subprocess.run(args, capture_output=True, text=True, timeout=duration + 120)
        self.assertIn(r.returncode, (0, 1), r.stderr[-3000:])
        return json.loads(r.stdout)

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
        self.fleet(n, 25)
        done = self.wait_state(rid, ("completed",), timeout=5)
        self.assertEqual(done["phase"], len(phases) - 1)
        self.settle()
        devices = self.rows("SELECT key, version, state, offer_rule FROM devices")
        self.assertEqual(len(devices), n)
        per_phase = [0] * len(phases)
        for key, version, state, rule in devices:
            self.assertEqual((version, state), ("2.0.0", 4), key)  # 4: confirmed
            self.assertEqual(decode_rule(rule), (rid, phase_of(rid, key, phases)), key)
            per_phase[phase_of(rid, key, phases)] += 1
        self.assertEqual(sum(per_phase), n)
        # The first phase is about 10% of the fleet: the bucket hash spreads.
        self.assertTrue(20 <= per_phase[0] <= 60, per_phase)
        print("\nstaged rollout of %d devices: per phase %s" % (n, per_phase))


class HaltTest(RolloutFleet):

    def test_crash_at_boot_halts_in_the_first_phase(self):
        n = 400
        rel = self.upload(self.mkimage("2.0.0", crash=True), device=DEVICE, version="2.0.0")
        phases = [10, 50, 100]
        ro = self.start_rollout({"release": rel["id"], "phases": phases, "soak": 2,
                                 "silent_after": 60})
        rid = ro["id"]
        self.fleet(n, 12)
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
        versions = self.rows("SELECT version, COUNT(*) FROM devices GROUP BY version")
        self.assertEqual(versions, [("1.0.0", n)])
        reverted = self.rows("SELECT COUNT(*) FROM devices WHERE state = 5")[0][0]
        self.assertGreater(reverted, 0)
        print("\ncrash-at-boot release: %d devices offered before the halt, %d reverted; "
              "reason: %s" % (len({k for k, _ in offered}), reverted, halted["reason"]))


if __name__ == "__main__":
    unittest.main()
