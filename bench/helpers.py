#!/usr/bin/env python3
"""bench/helpers.py - python3 (stdlib only) helpers for bench/server.sh and
bench/reload.sh.

  helpers.py ports N                  print N free TCP ports on 127.0.0.1
  helpers.py mkdata DIR RULES INDEX   write DIR/versions.json with RULES rules for
                                      distinct devices, the benched device at
                                      position INDEX (0-based); print its answer
  helpers.py mkbig DIR RULES INDEX BYTES
                                      the same as mkdata, compact and padded to
                                      just under BYTES (a long versions.json)
  helpers.py mkimages PUBLIC          write PUBLIC/firmware/bench-1m.bin (1 MiB,
                                      first byte 0xE9) and bench-fs.bin
  helpers.py table RESULTS            print the results table from the
                                      "key<TAB>value" lines server.sh collected
"""
import json
import os
import random
import socket
import statistics
import sys

# The benched device: what wrk and holdconns send (server.sh builds the same
# headers from these values) and the rule that matches it.
BENCH_DEVICE = "ESPURNA_BENCH"
BENCH_TARGET = {
    "version": "1.13.6",
    "firmware": "/firmware/bench-1m.bin",
    "spiffs": "/firmware/bench-fs.bin",
}


def ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def bench_rules(count, index):
    """RULES rules for distinct devices, the benched device's at index."""
    rules = []
    for i in range(count):
        if i == index:
            origin = {"device": BENCH_DEVICE, "min": "1.0.0", "lt": "1.13.6"}
            target = dict(BENCH_TARGET)
        else:
            origin = {"device": "DEVICE_%05d" % i, "min": "1.0.0", "lt": "2.%d.0" % (i % 100)}
            target = {"version": "2.%d.0" % (i % 100), "firmware": "/firmware/bench-1m.bin"}
        rules.append({"origin": origin, "target": target})
    return rules


def write_rules(folder, text):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "versions.json"), "w") as f:
        f.write(text)
    # The answer nofussd builds: compact, keys in file order, "/" unescaped.
    print(json.dumps(BENCH_TARGET, separators=(",", ":")))


def mkdata(folder, count, index):
    write_rules(folder, json.dumps(bench_rules(count, index), indent=1) + "\n")


def mkbig(folder, count, index, size):
    """Compact rules; every other rule's target gets a "note" long enough
    to bring the file just under size bytes."""
    rules = bench_rules(count, index)
    bare = len(json.dumps(rules, separators=(",", ":")))
    note = ',"note":""'
    pad = (size - 1024 - bare) // max(count - 1, 1) - len(note)
    if pad < 0:
        sys.exit("mkbig: %d rules do not fit in %d bytes" % (count, size))
    for i, rule in enumerate(rules):
        if i != index:
            rule["target"]["note"] = "n" * pad
    write_rules(folder, json.dumps(rules, separators=(",", ":")) + "\n")


def mkimages(public):
    fw = os.path.join(public, "firmware")
    os.makedirs(fw, exist_ok=True)
    rnd = random.Random(8266)
    img = bytearray(rnd.getrandbits(8) for _ in range(1024 * 1024))
    img[0] = 0xE9  # ESP8266 image magic
    with open(os.path.join(fw, "bench-1m.bin"), "wb") as f:
        f.write(img)
    with open(os.path.join(fw, "bench-fs.bin"), "wb") as f:
        f.write(img[:65536])


# ---- the table ------------------------------------------------------------

def load(path):
    res = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "\t" in line:
                k, v = line.split("\t", 1)
                res[k] = v
    return res


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def rounds(res, prefix):
    vals = []
    i = 1
    while prefix + "." + str(i) in res:
        x = num(res[prefix + "." + str(i)])
        if x is not None:
            vals.append(x)
        i += 1
    return vals


def med(vals):
    return statistics.median(vals) if vals else None


# A run during which other processes used this much of the CPUs (percent) is
# left out of the median when the same figure has undisturbed runs.
MAX_OTHER = float(os.environ.get("BENCH_MAX_OTHER", "10"))
DISTURBED = set()  # figures whose every run was disturbed


def clean_median(res, prefix):
    vals = rounds(res, prefix)
    others = rounds(res, "other." + prefix)
    if len(others) != len(vals):
        return med(vals)
    clean = [v for v, o in zip(vals, others) if o < MAX_OTHER]
    if clean:
        return med(clean)
    if vals:
        DISTURBED.add(prefix)
    return med(vals)


def fmt(x, unit=""):
    if x is None:
        return "n/a"
    if unit == "MB":
        return "%.1f" % x
    if x >= 100:
        return "{:,.0f}".format(x)
    return "%.2f" % x


def table(path):
    global MAX_OTHER
    res = load(path)
    MAX_OTHER = num(res.get("info.max_other")) or MAX_OTHER
    W = 58
    rows = []  # (label, nofussd, anchor, ratio, target text, result)

    def compare(label, a, b, op, goal, unit=""):
        ratio = a / b if a is not None and b else None
        if ratio is None:
            verdict = "n/a"
        elif op == ">=":
            verdict = "PASS" if ratio >= goal else "MISS"
        elif op == "<=":
            verdict = "PASS" if ratio <= goal else "MISS"
        else:
            verdict = "(context)"
        tgt = "%s %.1fx" % (op, goal) if op in (">=", "<=") else "-"
        rows.append((label, fmt(a, unit), fmt(b, unit),
                     "%.2f" % ratio if ratio is not None else "n/a", tgt, verdict))

    ka = {s: clean_median(res, "ka." + s) for s in ("nofussd", "nofussd10k", "nginx_a", "nginx_b")}
    cl = {s: clean_median(res, "close." + s) for s in ("nofussd", "nginx_a", "nginx_b")}
    dl = {s: clean_median(res, "dl." + s) for s in ("nofussd", "nginx_a")}

    print()
    print("nofussd benchmark: %s vs %s; server on CPU %s, wrk and clients on CPU %s"
          % (res.get("info.nofussd", "?"), res.get("info.nginx", "?"),
             res.get("info.server_cpu", "?"), res.get("info.client_cpu", "?")))
    print("%s s per wrk run, %s interleaved round(s), medians of the runs other processes did not"
          " disturb (< %.0f%% CPU); nginx: 1 worker, access log %s"
          % (res.get("info.duration", "?"), res.get("info.rounds", "?"), MAX_OTHER,
             res.get("info.nginx_log", "?")))
    print("nofussd %s" % res.get("info.build", "?"))
    retried = sum(1 for k in res if k.startswith("tries."))
    print("load average at start %s, at end %s; %s s spent waiting for a quiet machine, %d run(s)"
          " re-run because other processes disturbed them"
          % (res.get("info.load_start", "?"), res.get("info.load_end", "?"),
             res.get("info.quiet_used", "?"), retried))
    print()
    hdr = ("measurement", "nofussd", "anchor", "ratio", "target", "result")
    line = "%-*s %14s %14s %7s %8s  %s"
    print(line % ((W,) + hdr))
    print("-" * (W + 14 + 14 + 7 + 8 + 14))

    def section(title):
        rows.append((title, None, None, None, None, None))

    section("1 checks, keep-alive, 50 conns (req/s)")
    compare("    vs nginx static file, open_file_cache", ka["nofussd"], ka["nginx_a"], ">=", 1.3)
    compare("    vs nginx return 200 from memory", ka["nofussd"], ka["nginx_b"], ">=", 1.0)
    section("2 checks, Connection: close, 50 conns (req/s)")
    compare("    vs nginx static file, open_file_cache", cl["nofussd"], cl["nginx_a"], ">=", 1.0)
    compare("    vs nginx return 200 from memory", cl["nofussd"], cl["nginx_b"], ">=", 1.0)
    section("3 1 MiB image downloads, 100 conns (downloads/s)")
    compare("    vs nginx sendfile", dl["nofussd"], dl["nginx_a"], ">=", 0.9)
    section("4 checks, keep-alive, 10,000 rules (req/s)")
    compare("    vs nofussd with 10 rules (interleaved)", ka["nofussd10k"], ka["nofussd"], ">=", 0.9)

    def mb(key):
        v = num(res.get(key))
        return v / 1024.0 if v is not None else None

    def probe(name):
        v = res.get(name + ".probe", "")
        kv = dict(x.split("=", 1) for x in v.split() if "=" in x)
        if "answered" not in kv:
            return "n/a"
        if "lat_ms_med" in kv:
            return "%s %sms" % (kv["answered"], kv["lat_ms_med"])
        return kv["answered"]

    def info(label, a, b):
        rows.append((label, a, b, "", "", ""))

    def tcp_mb(name):
        v = num(res.get(name + ".sock_max"))
        return v * 4096 / 1e6 if v is not None else None

    section("5a RSS, %s idle keep-alive conns (MB)" % res.get("info.idle_n", "?"))
    compare("    vs nginx master+worker", mb("mem.idle.nofussd.rss_kb"),
            mb("mem.idle.nginx.rss_kb"), "<=", 1.5, "MB")
    compare("    nofussd --memory-limit 2048 vs nginx", mb("mem.idle.nofussd_mem2k.rss_kb"),
            mb("mem.idle.nginx.rss_kb"), "", 0, "MB")
    info("    20 checks meanwhile: answered, median latency", probe("mem.idle.nofussd"),
         probe("mem.idle.nginx"))
    section("5b RSS, %s slow 1 MiB downloads at ~%s KB/s (MB)"
            % (res.get("info.slow_n", "?"), res.get("info.slow_kbps", "?")))
    compare("    vs nginx master+worker", mb("mem.slow.nofussd.rss_kb"),
            mb("mem.slow.nginx.rss_kb"), "<=", 1.5, "MB")
    compare("    nofussd --sndbuf 65536 vs nginx sndbuf=65536",
            mb("mem.slow.nofussd_sndbuf.rss_kb"), mb("mem.slow.nginx_sndbuf.rss_kb"), "", 0, "MB")
    compare("    kernel TCP memory during (MB, sockstat)", tcp_mb("mem.slow.nofussd"),
            tcp_mb("mem.slow.nginx"), "", 0, "MB")
    compare("    same, --sndbuf 65536 / sndbuf=65536", tcp_mb("mem.slow.nofussd_sndbuf"),
            tcp_mb("mem.slow.nginx_sndbuf"), "", 0, "MB")
    info("    20 checks meanwhile: answered, median latency", probe("mem.slow.nofussd"),
         probe("mem.slow.nginx"))
    info("    same, --sndbuf 65536 / sndbuf=65536", probe("mem.slow.nofussd_sndbuf"),
         probe("mem.slow.nginx_sndbuf"))

    for r in rows:
        if r[1] is None:
            print(r[0])
        else:
            print(line % (W, r[0], r[1], r[2], r[3], r[4], r[5]))
    if DISTURBED:
        print("NOTE: every run of %s was disturbed by other processes: its median uses them anyway,"
              % ", ".join(sorted(DISTURBED)))
        print("      so the ratios involving it are unreliable; run again on a quiet machine.")

    # ---- details ------------------------------------------------------------
    print()
    print("Per-round figures (req/s or downloads/s; the median is in the table); in brackets, the")
    print("CPU that processes other than the server and wrk used during that run, % of all CPUs:")
    for m, servers in (("ka", ("nofussd", "nofussd10k", "nginx_a", "nginx_b")),
                       ("close", ("nofussd", "nginx_a", "nginx_b")),
                       ("dl", ("nofussd", "nginx_a"))):
        for s in servers:
            vals = rounds(res, m + "." + s)
            extra = ""
            if m == "dl":
                mibs = rounds(res, "dlmib." + s)
                if mibs:
                    extra = "   (median %.0f MiB/s)" % med(mibs)
            others = rounds(res, "other.%s.%s" % (m, s))
            cells = []
            for i, v in enumerate(vals):
                o = ""
                if i < len(others):
                    o = " [%.0f%%%s]" % (others[i], "; left out" if others[i] >= MAX_OTHER and
                                         any(x < MAX_OTHER for x in others) else "")
                cells.append(fmt(v) + o)
            print("  %-6s %-11s %s%s" % (m, s, "  ".join(cells), extra))
    busy = [float(res[k]) for k in res if k.startswith("other.") and num(res[k]) is not None]
    if busy and max(busy) >= MAX_OTHER:
        print("WARNING: other processes used >= %.0f%% of the CPUs in %d of %d runs (up to %.0f%%):"
              % (MAX_OTHER, sum(1 for b in busy if b >= MAX_OTHER), len(busy), max(busy)))
        print("         the machine was shared; those runs are left out of the medians where the"
              " same figure has undisturbed runs.")
    errs = sorted(k for k in res if k.startswith("err."))
    if errs:
        print("wrk reported errors or non-2xx answers:")
        for k in errs:
            print("  %s: %s" % (k[4:], res[k]))
    else:
        print("wrk reported no socket errors and no non-2xx answers.")
    if "checklog.lines" in res:
        print("nofussd check log: %s lines written for %s checks wrk counted (warm-ups included)"
              % (res["checklog.lines"], res.get("checklog.requests", "?")))

    print()
    print("Memory scenarios (RSS = VmRSS; nginx = master + worker; kernel TCP memory from "
          "/proc/net/sockstat, pages of 4 KiB):")
    for scen, names in (("idle", ("nofussd", "nginx", "nofussd_mem2k")),
                        ("slow", ("nofussd", "nofussd_sndbuf", "nginx", "nginx_sndbuf"))):
        for s in names:
            p = "mem.%s.%s." % (scen, s)
            if p + "rss_kb" not in res:
                continue
            def pg(key):
                v = num(res.get(p + key))
                return "%d pages (%.0f MB)" % (v, v * 4096 / 1e6) if v is not None else "?"
            print("  %-4s %-15s RSS idle %s MB -> held %s MB; TCP mem before %s, during %s"
                  % (scen, s, fmt(mb(p + "base_kb"), "MB"), fmt(mb(p + "rss_kb"), "MB"),
                     pg("sock_before"), pg("sock_max")))
            print("       %-15s %s; %s; %s" % ("", res.get(p + "held", "held: ?"),
                                              res.get(p + "probe", "probe: ?"),
                                              res.get(p + "end", "end: ?")))
    notes = sorted(k for k in res if k.startswith("note."))
    if notes:
        print()
        print("Notes:")
        for k in notes:
            print("  - " + res[k])
    print()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    if cmd == "ports":
        ports(int(sys.argv[2]))
    elif cmd == "mkdata":
        mkdata(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "mkbig":
        mkbig(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "mkimages":
        mkimages(sys.argv[2])
    elif cmd == "table":
        table(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
