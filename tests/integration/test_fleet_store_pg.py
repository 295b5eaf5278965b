"""The fleet store wired into nofussd, on a real PostgreSQL (pgcluster.py: a
throw-away cluster on a free loopback port, as an unprivileged user when run
as root). The inventory is read with psql afterwards.

- 1,000 simulated devices update against one node: all confirmed, exactly.
- Two nodes on one database behind a round-robin proxy, so that a device's
  checks and downloads alternate between them: one inventory, every device
  once, its checks counted once.
- PostgreSQL stopped for 30 s in the middle of a 40 s fleet run of 300
  devices checking every second (about 9,000 check events queue up meanwhile,
  within the default queue of 16,384): no check fails, and every device and
  every check is in the inventory afterwards, none dropped.

Prints SKIPPED and passes only when the PostgreSQL server binaries are
missing."""
import collections
import os
import re
import threading
import time
import unittest

import pgcluster
from fleetstore import CONFIRMED, H_CONFIRMED, H_DOWNLOADED, Proxy, pg_inventory, psql
from harness import Server
from test_fleet import FleetTest, mac, run_fleet


class PgFleetTest(pgcluster.ClusterPerClass, FleetTest):
    def setUp(self):
        super().setUp()
        self.db_url = self.new_database("fleet")
        self.others = []

    def tearDown(self):
        try:
            for s in self.others:
                s.stop()
        finally:
            super().tearDown()

    def node(self):
        log = os.path.join(self.data.path, "checks-%d.log" % len(self.others))
        s = Server(self.data, "--no-watch", "--store", self.db_url, check_log=log)
        self.others.append(s)
        return s

    def stop_all(self):
        """SIGTERM every node; the events each wrote and dropped."""
        written = dropped = 0
        for s in self.others:
            self.assertEqual(s.stop(), 0, s.stderr())
            m = re.search(r"store: (\d+) events written, (\d+) dropped", s.stderr())
            self.assertIsNotNone(m, s.stderr())
            written += int(m.group(1))
            dropped += int(m.group(2))
        self.others = []
        return written, dropped

    def assert_all_confirmed(self, inv, n, checks, one_node=True, why=None):
        self.assertEqual(set(inv), {mac(i) for i in range(n)})
        # Exactly: a COMMIT cut by an outage is looked up, not written
        # again blindly (docs/STORE.md section 6).
        self.assertEqual(sum(d.checks for d in inv.values()), checks, why)
        for key, d in inv.items():
            self.assertEqual((d.state, d.version), (CONFIRMED, "0.1.1"), key)
            self.assertEqual(d.history[-1], H_CONFIRMED, key)
            # With two nodes, the other node's batch with the download's end
            # may commit after the confirming check: the store then confirms
            # from "downloading" (docs/STORE.md section 5).
            if one_node:
                self.assertEqual(d.history[-2], H_DOWNLOADED, key)

    def test_1000_devices_one_node(self):
        node = self.node()
        r = run_fleet("http://127.0.0.1:%d/" % node.port, "--until-updated", "--ramp", "2",
                      "--reboot-delay", "0.05", "--interval", "0.5", "--concurrency", "128",
                      "-q", n=1000)
        self.assertEqual((r.rc, r["updated"], r["checks"], r["checks_failed"]),
                         (0, 1000, 2000, 0), str(r))
        written, dropped = self.stop_all()
        self.assertEqual((written, dropped), (6000, 0))
        self.assert_all_confirmed(pg_inventory(self.bindir, self.db_url), 1000, 2000)

    def test_two_nodes_one_inventory(self):
        a, b = self.node(), self.node()
        proxy = Proxy([a.port, b.port])
        try:
            # A reboot of 1.5 s (a real ESP8266 takes longer to flash and
            # boot): each node commits its events within ~0.2 s plus a
            # transaction, so a device's check before the update is in the
            # database before its check after it, whichever node took each.
            # Two checks closer than that on two nodes may commit in either
            # order, and the store keeps the newest (docs/STORE.md section 7).
            r = run_fleet(proxy.url(), "--until-updated", "--ramp", "1", "--reboot-delay",
                          "1.5", "--interval", "0.5", "-q", n=400)
        finally:
            proxy.close()
        self.assertEqual((r.rc, r["updated"], r["checks"], r["checks_failed"]),
                         (0, 400, 800, 0), str(r))
        written, dropped = self.stop_all()
        served = []
        for s in (a, b):
            with open(s.check_log) as f:
                served.append(len(f.read().splitlines()))
        self.assertEqual(sum(served), 800)
        self.assertGreater(min(served), 300)  # both nodes answered, alternately
        self.assertEqual((written, dropped), (2400, 0))
        inv = pg_inventory(self.bindir, self.db_url)
        self.assert_all_confirmed(inv, 400, 800, one_node=False)
        for key, d in inv.items():
            self.assertEqual(d.checks, 2, key)
        rows = psql(self.bindir, self.db_url, "SELECT count(*), count(DISTINCT key) FROM devices")
        self.assertEqual(rows, [["400", "400"]])

    def test_postgresql_away_for_30s(self):
        node = self.node()
        outage = {}

        def stop_and_start():
            time.sleep(3)
            outage["stopped"] = time.monotonic()
            self.cluster.stop("fast")
            time.sleep(30)
            self.cluster.start()
            outage["started"] = time.monotonic()

        t = threading.Thread(target=stop_and_start)
        t.start()
        try:
            # --timeout past --duration: the fleet stops starting checks at
            # 40 s and lets those in flight finish (a --timeout would cut
            # them, served but not counted).
            r = run_fleet("http://127.0.0.1:%d/" % node.port, "--ramp", "2", "--interval", "1",
                          "--reboot-delay", "0.05", "--duration", "40", "--timeout", "55", "-q",
                          n=300)
        finally:
            t.join(60)
            if not self.cluster.running:
                self.cluster.start()
        self.assertEqual((r.rc, r["checks_failed"], r["updated"], r["timed_out"]),
                         (0, 0, 300, False), str(r))
        self.assertGreater(outage["started"] - outage["stopped"], 29.5)
        node.wait_for(r"store .*: .*retrying, events queue up meanwhile", 5)
        node.wait_for(r"store .*: writing again", 30)
        written, dropped = self.stop_all()
        self.assertEqual(dropped, 0)
        log = node.stderr()
        # The server's own count of the checks it answered: one check-log
        # line each, none dropped.
        self.assertNotIn("lines were dropped", log)
        per_mac = collections.Counter()
        with open(node.check_log) as f:
            for line in f:
                per_mac[line.split(" MAC: ", 1)[-1].split(" ", 1)[0]] += 1
        served = sum(per_mac.values())
        inv = pg_inventory(self.bindir, self.db_url)
        counted = sum(d.checks for d in inv.values())
        off = ["%s: %d checks served, %d in the store" % (k, per_mac[k], d.checks)
               for k, d in sorted(inv.items()) if d.checks != per_mac[k]]
        why = "fleet %d checks, server %d, inventory %d\n%s\n%s" % (
            r["checks"], served, counted, "\n".join(off[:20]), log)
        # The server answered every check the fleet made, and the store
        # holds exactly those.
        self.assertEqual(served, r["checks"], why)
        self.assert_all_confirmed(inv, 300, served, why=why)
        self.assertEqual(written, served + 300 * 4, why)


if __name__ == "__main__":
    unittest.main()
