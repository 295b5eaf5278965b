#!/usr/bin/env python3
"""bench/rollouts.py - staged rollouts measured (issue 10), each against its
anchor in the same run. A measurement, not a test: exits 0 whenever it ran,
and prints PASS or MISS next to each target.

  rollouts.py NOFUSSD NOFUSS

1. checks/s answered by an active rollout, against the same nofussd
   answering the same checks from a static versions.json rule: wrk -t1 -c50
   sends header-form checks from 10,000 distinct MACs (pipelined 100 at a
   time, as bench/store_server.py does), every one answered with an offer;
   both with the SQLite store on, so 10,000 devices are known. nofussd on
   CPU 0, wrk on CPU 1; rounds interleaved; medians; nofussd's CPU time per
   check too. Target: rollout >= 0.9x static.
2. A 10,000-device staged rollout (1 -> 10 -> 50 -> 100%, soak 2 s):
   `nofuss fleet` devices at 1.0.0 checking every 3 s until every one is
   confirmed on the release: wall time, nofussd's CPU time and peak RSS
   (VmHWM).
"""
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from store_server import HZ, ROUNDS, Nofussd, wrk  # noqa: E402

TOKEN = "bench-admin-token-0123456789abcdef0123"
STATIC = """[{"origin": {"device": "BENCH", "max": "1.0"},
  "target": {"version": "2.0.0", "firmware": "/firmware/bench.bin"}}]
"""
LUA = """
-- 100 batches of 100 pipelined checks: 10,000 distinct MACs, cycled.
local batches = {}
local n = 0
init = function(args)
  for b = 0, 99 do
    local reqs = {}
    for i = 0, 99 do
      local v = b * 100 + i
      local mac = string.format("02:00:00:00:%02X:%02X", (v >> 8) & 255, v & 255)
      reqs[i + 1] = wrk.format("GET", "/", {["Host"] = "127.0.0.1",
        ["X-ESP8266-MAC"] = mac, ["X-ESP8266-DEVICE"] = "BENCH",
        ["X-ESP8266-VERSION"] = "1.0", ["X-ESP8266-BUILD"] = "1"})
    end
    batches[b + 1] = table.concat(reqs)
  end
end
request = function()
  n = n % 100 + 1
  return batches[n]
end
"""


class Admin(Nofussd):
    """nofussd with its admin listener on a free port (read from its log)."""

    def __init__(self, binary, data, store, cpus):
        tokens = os.path.join(data, "tokens")
        with open(tokens, "w") as f:
            f.write("%s admin bench\n" % TOKEN)
        os.chmod(tokens, 0o600)
        Nofussd.__init__(self, binary, data, store, cpus,
                         ("--admin-token-file", tokens, "--admin-port", "0"))
        self.admin = None
        for _ in range(100):
            self.err.seek(0)
            for line in self.err.read().splitlines():
                if "admin API at http://127.0.0.1:" in line:
                    self.admin = int(line.split("127.0.0.1:")[1].split("/")[0])
            if self.admin:
                return
            time.sleep(0.05)
        sys.exit("no admin listener")

    def api(self, method, path, body=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.admin, path), data=body,
                                     method=method,
                                     headers={"Authorization": "Bearer " + TOKEN})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read().decode())


def mkimage(nofuss, version, path, device="BENCH"):
    subprocess.run([nofuss, "mkimage", "--device", device, "--version", version, "--size",
                    "16K", "-o", path], check=True, timeout=30)
    with open(path, "rb") as f:
        return f.read()


def offered(port):
    req = urllib.request.Request("http://127.0.0.1:%d/" % port, headers={
        "X-ESP8266-MAC": "02:00:00:00:00:00", "X-ESP8266-DEVICE": "BENCH",
        "X-ESP8266-VERSION": "1.0"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return b"2.0.0" in r.read()


def one_run(binary, nofuss, mode, script):
    data = tempfile.mkdtemp(prefix="nofuss-bench-ro-")
    os.makedirs(os.path.join(data, "public", "firmware"))
    fw = mkimage(nofuss, "2.0.0", os.path.join(data, "public", "firmware", "bench.bin"))
    with open(os.path.join(data, "versions.json"), "w") as f:
        f.write(STATIC if mode == "static" else "[]")
    n = Admin(binary, data, "sqlite://" + os.path.join(data, "fleet.db"), "0")
    try:
        if mode == "rollout":
            rel = n.api("POST", "/api/v1/releases?device=BENCH&version=2.0.0", fw)
            n.api("POST", "/api/v1/rollouts", json.dumps(
                {"release": rel["id"], "phases": [100], "soak": 3600}).encode())
        deadline = time.monotonic() + 10
        while not offered(n.port):
            if time.monotonic() > deadline:
                sys.exit("%s: nothing offered" % mode)
            time.sleep(0.05)
        t0 = n.ticks()
        rps, reqs = wrk(n.port, script, 0)
        cpu_us = (n.ticks() - t0) * 1e6 / HZ / reqs
    finally:
        n.stop()
        subprocess.run(["rm", "-rf", data])
    return rps, cpu_us


def throughput(binary, nofuss):
    script = os.path.join(tempfile.mkdtemp(prefix="nofuss-bench-lua-"), "macs.lua")
    with open(script, "w") as f:
        f.write(LUA)
    res = {"static": [], "rollout": []}
    for _ in range(ROUNDS):
        for mode in ("static", "rollout"):
            res[mode].append(one_run(binary, nofuss, mode, script))
    out = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v))
           for k, v in res.items()}
    # Each round's pair ran back to back, so its ratio is the least
    # disturbed by other load on the machine.
    out["round_ratio"] = statistics.median(r[0] / s[0]
                                           for s, r in zip(res["static"], res["rollout"]))
    out["cpu_ratio"] = out["rollout"][1] / out["static"][1]
    return out


def staged(binary, nofuss, devices=10000):
    data = tempfile.mkdtemp(prefix="nofuss-bench-staged-")
    os.makedirs(os.path.join(data, "public"))
    with open(os.path.join(data, "versions.json"), "w") as f:
        f.write("[]")
    fw = mkimage(nofuss, "2.0.0", os.path.join(data, "fw.bin"), device="ROLL")
    db = os.path.join(data, "fleet.db")
    n = Admin(binary, data, "sqlite://" + db, "0-%d" % (os.cpu_count() - 1))
    try:
        rel = n.api("POST", "/api/v1/releases?device=ROLL&version=2.0.0", fw)
        ro = n.api("POST", "/api/v1/rollouts", json.dumps(
            {"release": rel["id"], "phases": [1, 10, 50, 100], "soak": 2,
             "silent_after": 600}).encode())
        t0, c0 = time.monotonic(), n.ticks()
        fleet = subprocess.Popen(
            [nofuss, "fleet", "--server", "http://127.0.0.1:%d/" % n.port, "--devices",
             str(devices), "--device", "ROLL", "--version", "1.0.0", "--interval", "3",
             "--ramp", "3", "--reboot-delay", "0.2", "--concurrency", "64", "--duration",
             "600", "--quiet", "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        confirmed = 0
        while time.monotonic() - t0 < 600:
            try:
                con = sqlite3.connect(db, timeout=5)
                confirmed = con.execute("SELECT COUNT(*) FROM devices WHERE version = '2.0.0' "
                                        "AND state = 4").fetchone()[0]
                con.close()
            except sqlite3.Error:
                pass
            if confirmed >= devices:
                break
            time.sleep(0.5)
        wall = time.monotonic() - t0
        cpu = (n.ticks() - c0) / HZ
        hwm = n.status("VmHWM")
        state = n.api("GET", "/api/v1/rollouts/%d" % ro["id"])["state"]
        fleet.terminate()
        fleet.wait(60)
    finally:
        n.stop()
        subprocess.run(["rm", "-rf", data])
    return confirmed, wall, cpu, hwm, state


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    binary, nofuss = sys.argv[1], sys.argv[2]
    print("1. checks/s (wrk -t1 -c50, 10,000 distinct MACs, every check offered; SQLite "
          "store on; medians of %d rounds)" % ROUNDS)
    r = throughput(binary, nofuss)
    ratio = r["round_ratio"]
    print("   static rule: %.0f checks/s, %.1f us CPU/check" % r["static"])
    print("   rollout:     %.0f checks/s, %.1f us CPU/check" % r["rollout"])
    print("   checks/s ratio, median of the rounds' ratios: %.2fx (target >= 0.90x): %s" %
          (ratio, "PASS" if ratio >= 0.9 else "MISS"))
    print("   CPU per check ratio: %.2fx (rollout / static; below 1.11x is the same target)" %
          r["cpu_ratio"])
    print("2. 10,000-device staged rollout (1/10/50/100%, soak 2 s, checks every 3 s)")
    confirmed, wall, cpu, hwm, state = staged(binary, nofuss)
    print("   %d confirmed, rollout %s: wall %.1f s, nofussd CPU %.1f s, peak RSS %.1f MB" %
          (confirmed, state, wall, cpu, hwm / 1024.0))


if __name__ == "__main__":
    main()
