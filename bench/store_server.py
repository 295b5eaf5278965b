#!/usr/bin/env python3
"""bench/store_server.py - nofussd with its fleet store, measured against the
same nofussd with `store = off` in the same run (bench/store.sh runs it for
SQLite and for PostgreSQL). A measurement, not a test: exits 0 whenever it
ran, and prints PASS or MISS next to each target.

  store_server.py NOFUSSD STORE-URL [DEVICES] [SECONDS]

1. checks/s, store on vs off: wrk -t1 -c50 (keep-alive) sends header-form
   checks that each come from one of 100,000 distinct MACs (prepared in the
   Lua script and pipelined 100 at a time, so that wrk's cost is small and
   the same for both), answered with an offer
   (firmware and filesystem): the largest event a check makes. nofussd on
   CPU 0 (its writer thread with it), wrk on CPU 1. Rounds interleaved,
   medians. Also nofussd's CPU time per check, which does not depend on
   whether wrk or nofussd is the bottleneck. Target: on >= 0.9x off.
2. DEVICES (100,000) distinct devices check in within SECONDS (10): paced
   pipelined checks on 8 keep-alive connections, nofussd on every CPU (its
   writer thread beside the loop, as deployed). Then: how long after the
   last answer until every one is committed (what a kill -9 at that moment
   would lose), events dropped (target: none at the default queue), and
   nofussd's RSS with them all in the inventory (target <= 64 MB).
"""
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
DUR = int(os.environ.get("BENCH_DURATION", "5"))
SCPU = os.environ.get("BENCH_SERVER_CPU", "0")
CCPU = os.environ.get("BENCH_CLIENT_CPU", "1")
CONNS = 8             # connections of the paced check-in
STEP = 100            # checks pipelined per send
HZ = os.sysconf("SC_CLK_TCK")
# The check-in's devices (mac()), apart from wrk's (02:00:...) in one database.
COUNT = "SELECT count(*) FROM devices WHERE key LIKE '02:01:%'"

RULES = """[{"origin": {"device": "BENCH", "max": "1.0"},
  "target": {"version": "1.1", "firmware": "/firmware/bench.bin",
             "spiffs": "/firmware/bench-fs.bin"}}]
"""

LUA = """
-- 1,000 batches of 100 pipelined checks, 100,000 distinct MACs: one Lua call
-- per 100 requests, so that wrk is not what limits the rate.
local batches = {}
local n = 0
init = function(args)
  local base = tonumber(args[1])
  for b = 0, 999 do
    local reqs = {}
    for i = 0, 99 do
      local v = base + b * 100 + i
      local mac = string.format("02:00:%02X:%02X:%02X:%02X", (v >> 24) & 255,
                                (v >> 16) & 255, (v >> 8) & 255, v & 255)
      reqs[i + 1] = wrk.format("GET", "/", {["Host"] = "127.0.0.1",
        ["X-ESP8266-MAC"] = mac, ["X-ESP8266-DEVICE"] = "BENCH",
        ["X-ESP8266-VERSION"] = "1.0", ["X-ESP8266-BUILD"] = "1"})
    end
    batches[b + 1] = table.concat(reqs)
  end
end
request = function()
  n = n % 1000 + 1
  return batches[n]
end
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def mac(i):
    return "02:01:%02X:%02X:%02X:%02X" % ((i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255,
                                          i & 255)


class Nofussd:
    def __init__(self, binary, data, store, cpus=SCPU, extra=()):
        self.port = free_port()
        self.err = open(os.path.join(data, "nofussd-%d.err" % self.port), "w+")
        self.proc = subprocess.Popen(
            ["taskset", "-c", cpus, binary, "-d", data, "-l", "127.0.0.1", "-p",
             str(self.port), "--check-log", os.path.join(data, "checks.log"), "--no-watch",
             "--store", store] + list(extra), stdout=subprocess.DEVNULL, stderr=self.err)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        self.err.seek(0)
        sys.exit("nofussd did not start: " + self.err.read())

    def ticks(self, loop_only=False):
        """CPU time (clock ticks) of nofussd, or of its loop thread alone."""
        path = "/proc/%d/task/%d/stat" if loop_only else "/proc/%d/stat"
        with open(path % ((self.proc.pid, self.proc.pid) if loop_only else self.proc.pid)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def status(self, key):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.err.seek(0)
        text = self.err.read()
        self.err.close()
        return text


def wrk(port, script, base):
    out = subprocess.run(["taskset", "-c", CCPU, "wrk", "-t1", "-c50", "-d%ds" % DUR, "-s",
                          script, "http://127.0.0.1:%d/" % port, "--", str(base)],
                         capture_output=True, text=True, timeout=DUR + 120).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    if not m or not n or "Non-2xx" in out:
        sys.exit("wrk failed:\n" + out)
    return float(m.group(1)), int(n.group(1))


def throughput(binary, data, store, script):
    """Interleaved rounds of store off and on: medians of checks/s and of
    nofussd's CPU microseconds per check."""
    res = {"off": [], "on": []}
    base = 0
    for _ in range(ROUNDS):
        for name, url in (("off", "off"), ("on", store)):
            n = Nofussd(binary, data, url)
            t0, l0 = n.ticks(), n.ticks(True)
            rps, reqs = wrk(n.port, script, base)
            cpu_us = (n.ticks() - t0) * 1e6 / HZ / reqs
            loop_us = (n.ticks(True) - l0) * 1e6 / HZ / reqs
            base += 100000  # new devices each run: every check is a first sighting
            n.stop()
            res[name].append((rps, cpu_us, loop_us))
    return {k: tuple(statistics.median(r[i] for r in v) for i in range(3))
            for k, v in res.items()}


def pacer(port, ids, seconds, device, stats):
    """Sends checks for ids at an even pace over seconds, STEP at a time,
    on one keep-alive connection."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        for k in range(0, len(ids), STEP):
            due = start + seconds * k / len(ids)
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            chunk = ids[k:k + STEP]
            s.sendall(b"".join(
                b"GET / HTTP/1.1\r\nHost: x\r\nX-ESP8266-MAC: %s\r\nX-ESP8266-DEVICE: %s\r\n"
                b"X-ESP8266-VERSION: 1.0\r\n\r\n" % (mac(j).encode(), device) for j in chunk))
            got = 0
            while got < len(chunk):
                data = s.recv(262144)
                if not data:
                    stats["errors"] += 1
                    return
                got += data.count(b"HTTP/1.1 200")
            stats["answered"] += len(chunk)


def count_devices(store, pg_psql):
    if store.startswith("sqlite://"):
        path = store[len("sqlite://"):]
        try:
            db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
            n = db.execute(COUNT).fetchone()[0]
            db.close()
            return n
        except sqlite3.Error:
            return -1
    r = subprocess.run([pg_psql, "-X", "-At", "-d", store, "-c", COUNT],
                       capture_output=True, text=True, timeout=30)
    return int(r.stdout.strip() or -1)


def checkin(binary, data, store, devices, seconds, pg_psql):
    # Not pinned: as deployed, the writer thread may run beside the loop.
    n = Nofussd(binary, data, store, "0-%d" % (os.cpu_count() - 1))
    stats = {"answered": 0, "errors": 0}
    ids = list(range(devices))
    threads = [threading.Thread(target=pacer, args=(n.port, ids[c::CONNS], seconds, b"BENCH",
                                                    stats)) for c in range(CONNS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    took = time.monotonic() - t0
    last = time.monotonic()
    recorded = 0
    while time.monotonic() - last < 60:
        recorded = count_devices(store, pg_psql)
        if recorded >= devices:
            break
        time.sleep(0.02)
    drain = time.monotonic() - last
    rss, hwm = n.status("VmRSS"), n.status("VmHWM")
    err = n.stop()
    m = re.search(r"store: (\d+) events written, (\d+) dropped", err)
    written, dropped = (int(m.group(1)), int(m.group(2))) if m else (-1, -1)
    return {"took": took, "answered": stats["answered"], "errors": stats["errors"],
            "recorded": recorded, "drain": drain, "rss": rss, "hwm": hwm,
            "written": written, "dropped": dropped}


def verdict(ok):
    return "PASS" if ok else "MISS"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binary, store = sys.argv[1], sys.argv[2]
    devices = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
    pg_psql = os.environ.get("PSQL", "psql")
    with tempfile.TemporaryDirectory(prefix="nofuss-store-server.") as data:
        os.makedirs(os.path.join(data, "public", "firmware"))
        for name, size in (("bench.bin", 65536), ("bench-fs.bin", 32768)):
            with open(os.path.join(data, "public", "firmware", name), "wb") as f:
                f.write(bytes([0xE9]) + os.urandom(size - 1))
        with open(os.path.join(data, "versions.json"), "w") as f:
            f.write(RULES)
        script = os.path.join(data, "macs.lua")
        with open(script, "w") as f:
            f.write(LUA)
        if store == "sqlite":
            store = "sqlite://%s/store/fleet.db" % data
        shown = re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", store)
        print("store %s; nofussd on CPU %s, load on CPU %s; load average %s"
              % (shown, SCPU, CCPU, open("/proc/loadavg").read().split(" ", 3)[:3]))
        med = throughput(binary, data, store, script)
        ratio = med["on"][0] / med["off"][0]
        print("1. checks/s (wrk -t1 -c50, %d s x %d rounds, medians; each check a new device)"
              % (DUR, ROUNDS))
        print("   store off (anchor) %9.0f checks/s  %6.1f us CPU/check, loop thread %5.1f us"
              % med["off"])
        print("   store on           %9.0f checks/s  %6.1f us CPU/check, loop thread %5.1f us"
              % med["on"])
        print("   ratio on/off       %9.2fx (target >= 0.90x) %s; CPU per check %.2fx, "
              "loop thread's %.2fx" % (ratio, verdict(ratio >= 0.9), med["on"][1] / med["off"][1],
                                      med["on"][2] / med["off"][2]))
        # A fresh database for the check-in: the runs above left up to
        # 100,000 devices each in the first.
        if store.startswith("sqlite://"):
            store = "sqlite://%s/store/checkin.db" % data
        else:
            name = "checkin_%d" % os.getpid()
            subprocess.run([pg_psql, "-X", "-q", "-d", store, "-c", "CREATE DATABASE " + name],
                           check=True, timeout=60)
            store = store.rsplit("/", 1)[0] + "/" + name
        r = checkin(binary, data, store, devices, seconds, pg_psql)
        print("2. %d distinct devices checking in within %.0f s (%d connections, paced; "
              "nofussd on every CPU)" % (devices, seconds, CONNS))
        print("   sent in %.1f s, %d answered, %d connection errors"
              % (r["took"], r["answered"], r["errors"]))
        print("   recorded %d devices; all committed %.2f s after the last answer "
              "(what kill -9 then would lose; target <= 1 s) %s"
              % (r["recorded"], r["drain"], verdict(r["drain"] <= 1.0)))
        print("   events written %d, dropped %d (target: none dropped) %s"
              % (r["written"], r["dropped"],
                 verdict(r["dropped"] == 0 and r["recorded"] == devices)))
        print("   nofussd RSS with %d devices in the inventory: %.1f MB (peak %.1f MB; "
              "target <= 64 MB) %s" % (r["recorded"], r["rss"] / 1024, r["hwm"] / 1024,
                                       verdict(r["hwm"] <= 64 * 1024)))


if __name__ == "__main__":
    main()
