"""The fleet store against a real PostgreSQL (tests/integration/store_pg.c).

Starts a throw-away cluster (pgcluster.py: initdb and pg_ctl in a temporary
folder, 127.0.0.1 on a free port, as an unprivileged user when run as root),
runs store_pg_test (NOFUSS_STORE_PG_TEST) against it, and serves its
requests to stop and start the server during the outage test on a pair of
pipes. Prints SKIPPED and passes only when the PostgreSQL server binaries
are missing. Every wait is bounded; the cluster is always stopped.
"""
import os
import subprocess
import threading
import unittest

import pgcluster

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
DRIVER = os.environ.get("NOFUSS_STORE_PG_TEST",
                        os.path.join(SOURCE, "build", "tests", "integration", "store_pg_test"))
RUN_TIMEOUT = 480


class Control(threading.Thread):
    """Reads "stop"/"start" lines from the test program, answers "ok"."""

    def __init__(self, cluster, rfd, wfd):
        super().__init__(daemon=True)
        self.cluster, self.rfd, self.wfd = cluster, rfd, wfd
        self.done = []

    def run(self):
        with os.fdopen(self.rfd, "r") as requests, os.fdopen(self.wfd, "w") as answers:
            for line in requests:
                what = line.strip()
                if what == "stop":
                    self.cluster.stop("fast")
                elif what == "start":
                    self.cluster.start()
                else:
                    break
                self.done.append(what)
                answers.write("ok\n")
                answers.flush()


class StorePostgres(unittest.TestCase):
    def test_store_on_postgresql(self):
        bindir = pgcluster.find_bin()
        if bindir is None:
            print("SKIPPED: PostgreSQL server binaries not found "
                  "(apt-get install postgresql, or set PG_BIN)")
            self.skipTest("PostgreSQL server binaries not found")
        self.assertTrue(os.access(DRIVER, os.X_OK), "build store_pg_test first: " + DRIVER)
        cluster = pgcluster.Cluster(bindir)
        try:
            cluster.init()
            cluster.start()
            to_test_r, to_test_w = os.pipe()
            from_test_r, from_test_w = os.pipe()
            control = Control(cluster, from_test_r, to_test_w)
            control.start()
            env = dict(os.environ, NOFUSS_PG_BASE=cluster.base,
                       NOFUSS_PG_CONTROL="%d,%d" % (from_test_w, to_test_r))
            try:
                proc = subprocess.run([DRIVER], env=env, pass_fds=(from_test_w, to_test_r),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      timeout=RUN_TIMEOUT, check=False)
            finally:
                os.close(from_test_w)  # ends the control thread's loop
                os.close(to_test_r)
                control.join(timeout=60)
            output = proc.stdout.decode(errors="replace")
            print(output)
            self.assertEqual(proc.returncode, 0,
                             "store_pg_test failed\n" + output + cluster.server_log())
            self.assertEqual(control.done, ["stop", "start"])
            self.assertIn("PASSED", output)
            self.assertNotIn("SKIPPED", output)
        finally:
            cluster.destroy()


if __name__ == "__main__":
    unittest.main()
