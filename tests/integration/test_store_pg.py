"""The fleet store against a real PostgreSQL (tests/integration/store_pg.c).

Starts a throw-away cluster (pgcluster.py: initdb and pg_ctl in a temporary
folder, 127.0.0.1 on a free port, as an unprivileged user when run as root),
runs store_pg_test (NOFUSS_STORE_PG_TEST) against it, and serves its
requests to stop and start the server during the outage test on a pair of
pipes, and a proxy in front of the server (CommitCutter) that on request
cuts a connection between the server's answer to a COMMIT and its client,
or before the COMMIT reaches the server. Prints SKIPPED and passes only
when the PostgreSQL server binaries are missing. Every wait is bounded;
the cluster is always stopped.
"""
import os
import socket
import subprocess
import threading
import unittest

import pgcluster

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
DRIVER = os.environ.get("NOFUSS_STORE_PG_TEST",
                        os.path.join(SOURCE, "build", "tests", "integration", "store_pg_test"))
RUN_TIMEOUT = 480
# A CommandComplete message whose tag is COMMIT: the server's answer that
# the transaction committed (it is sent only once the commit is done).
COMMIT_DONE = b"C\x00\x00\x00\x0bCOMMIT\x00"
# A Parse message of an unnamed statement "COMMIT" without parameters: how
# libpq's pipeline (PQsendQueryParams) sends the client's COMMIT.
COMMIT_SENT = b"P\x00\x00\x00\x0e\x00COMMIT\x00\x00\x00"


class CommitCutter(threading.Thread):
    """A loopback TCP proxy in front of the cluster. Forwards both ways;
    armed "cut", the first server-to-client data holding COMMIT_DONE is not
    passed on: both sides of that connection are closed instead, so the
    client lost the answer to a COMMIT the server carried out. Armed
    "hold", the first client-to-server data holding COMMIT_SENT is not
    passed on and only the client's side is closed: the server's side
    stays open, its transaction in progress, until the server ends it."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listen_port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.armed = None  # "cut", "hold" or None
        self.cuts = 0

    def run(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for src, dst, watch in ((client, server, "hold"), (server, client, "cut")):
                threading.Thread(target=self.pump, args=(src, dst, watch), daemon=True).start()

    def cut_now(self, watch, seen):
        with self.lock:
            if self.armed == watch and (COMMIT_DONE if watch == "cut" else COMMIT_SENT) in seen:
                self.armed = None
                self.cuts += 1
                return True
        return False

    def pump(self, src, dst, watch):
        tail = b""
        ends = (src, dst)
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.cut_now(watch, tail + data):
                    ends = (src, dst) if watch == "cut" else (src,)
                    break
                dst.sendall(data)
                tail = data[-len(COMMIT_SENT):]
        except OSError:
            pass
        for sock in ends:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self):
        self.listener.close()


class Control(threading.Thread):
    """Reads "stop"/"start" lines from the test program, answers "ok";
    "cut-commit" and "hold-commit" arm the CommitCutter, "cut-done" is
    answered "ok" only when it cut a connection once since."""

    def __init__(self, cluster, cutter, rfd, wfd):
        super().__init__(daemon=True)
        self.cluster, self.cutter, self.rfd, self.wfd = cluster, cutter, rfd, wfd
        self.done = []

    def run(self):
        with os.fdopen(self.rfd, "r") as requests, os.fdopen(self.wfd, "w") as answers:
            for line in requests:
                what = line.strip()
                if what == "stop":
                    self.cluster.stop("fast")
                elif what == "start":
                    self.cluster.start()
                elif what in ("cut-commit", "hold-commit"):
                    with self.cutter.lock:
                        self.cutter.armed, self.cutter.cuts = what.split("-")[0], 0
                elif what == "cut-done":
                    with self.cutter.lock:
                        if self.cutter.cuts != 1:
                            what = "cut-missing"
                else:
                    break
                self.done.append(what)
                answers.write("ok\n" if what != "cut-missing" else "no\n")
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
            cutter = CommitCutter(cluster.port)
            cutter.start()
            control = Control(cluster, cutter, from_test_r, to_test_w)
            control.start()
            proxy = "%s:%d" % (cluster.base.rsplit(":", 1)[0], cutter.listen_port)
            env = dict(os.environ, NOFUSS_PG_BASE=cluster.base, NOFUSS_PG_PROXY=proxy,
                       NOFUSS_PG_CONTROL="%d,%d" % (from_test_w, to_test_r))
            try:
                proc = subprocess.run([DRIVER], env=env, pass_fds=(from_test_w, to_test_r),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      timeout=RUN_TIMEOUT, check=False)
            finally:
                os.close(from_test_w)  # ends the control thread's loop
                os.close(to_test_r)
                control.join(timeout=60)
                cutter.close()
            output = proc.stdout.decode(errors="replace")
            print(output)
            self.assertEqual(proc.returncode, 0,
                             "store_pg_test failed\n" + output + cluster.server_log())
            self.assertEqual(control.done, ["stop", "start", "cut-commit", "cut-done",
                                            "hold-commit", "cut-done"])
            self.assertIn("PASSED", output)
            self.assertNotIn("SKIPPED", output)
        finally:
            cluster.destroy()


if __name__ == "__main__":
    unittest.main()
