"""Rollouts on PostgreSQL (issue 10; docs/ROLLOUTS.md section 3): two
nofussd nodes on one database, sharing the public folder. A rollout started
through one node offers on both; a halt taken on one node stops offers on
the other within two seconds (each node's watcher polls the rollouts table
every 250 ms). Also test_rollout_checks.py's operator moves on this
backend.

Prints SKIPPED and passes only when the PostgreSQL server binaries are
missing."""
import re
import time
import unittest

from harness import Server, check_headers, get, wait_until
from test_releases import ADMIN_TOKEN
from test_releases_pg import PgStore
from test_rollout_checks import MAC, ControlsServer, ControlsTest


class PgControlsTest(PgStore, ControlsTest):
    pass


class TwoNodesTest(PgStore, ControlsServer):

    def start_b(self):
        b = Server(self.data, "-c", self.ini, "--admin-token-file", self.tokens,
                   "--admin-port", "0")
        b.wait_for(r"admin API at http://127\.0\.0\.1:(\d+)/")
        return b

    def offered_on(self, srv, mac=MAC):
        r = get(srv.port, "/", check_headers(mac, "SONOFF", "1.0.0"))
        self.assertEqual(r.status, 200)
        return b'"2.0.0"' in r.body

    def test_halt_on_one_node_stops_the_other_within_two_seconds(self):
        b = self.start_b()
        try:
            rid = self.start_rollout(soak=3600)
            self.assertTrue(wait_until(lambda: self.offered_on(self.srv), timeout=5))
            self.assertTrue(wait_until(lambda: self.offered_on(b), timeout=5))
            t0 = time.monotonic()
            self.act(rid, "halt")
            self.assertTrue(wait_until(lambda: not self.offered_on(b), timeout=5, step=0.02))
            other = time.monotonic() - t0
            # The node that took it stops too (its own watcher's next tick).
            self.assertTrue(wait_until(lambda: not self.offered_on(self.srv), timeout=2,
                                       step=0.02))
            # Resumed on the other node: offered again on the first.
            st, out, _ = self.request_port(b, "POST", "/api/v1/rollouts/%d/resume" % rid)
            self.assertEqual(st, 200, out)
            t0 = time.monotonic()
            self.assertTrue(wait_until(lambda: self.offered_on(self.srv), timeout=5, step=0.02))
            back = time.monotonic() - t0
            print("\ntwo nodes: a halt on one stopped offers on the other after %.2f s; a "
                  "resume on the other reached the first after %.2f s" % (other, back))
            self.assertLess(other, 2.0)
            self.assertLess(back, 2.0)
        finally:
            self.assertEqual(b.stop(), 0, b.stderr())

    def request_port(self, srv, method, path):
        line = re.search(r"admin API at http://127\.0\.0\.1:(\d+)/", srv.stderr())
        saved, self.port = self.port, int(line.group(1))
        try:
            return self.request(method, path, b"", ADMIN_TOKEN)
        finally:
            self.port = saved


del ControlsTest  # run here on PostgreSQL only

if __name__ == "__main__":
    unittest.main()
