"""A throw-away PostgreSQL cluster for the fleet store's tests and benchmark.

Debian's server binaries (initdb, pg_ctl; PG_BIN, or the newest
/usr/lib/postgresql/*/bin) make a cluster in a temporary folder, listening
on 127.0.0.1 only, on a free port, with trust authentication for the
superuser "nofuss". PostgreSQL refuses to run as root: as root the cluster
belongs to the unprivileged user PG_USER (default "nobody"; created with
useradd when missing). Every wait is bounded; stop() always stops the
server (fast, then immediate, then SIGKILL of the postmaster) and removes
the folder.

    python3 pgcluster.py run -- COMMAND...

runs COMMAND with NOFUSS_PG_BASE=postgresql://nofuss@127.0.0.1:PORT in its
environment (bench/store.sh uses this) and then stops the cluster.
"""
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

START_TIMEOUT = 60


def find_bin():
    """The folder of initdb and pg_ctl, or None when PostgreSQL is missing."""
    candidates = [os.environ["PG_BIN"]] if os.environ.get("PG_BIN") else []
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0)
    candidates += reversed(versions)
    for path in candidates:
        if os.access(os.path.join(path, "initdb"), os.X_OK) and \
                os.access(os.path.join(path, "pg_ctl"), os.X_OK):
            return path
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_as_user():
    """The unprivileged user to run the server as, or None (not root)."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("PG_USER", "nobody")
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", name], check=True, timeout=30)
    return name


class Cluster:
    def __init__(self, bindir):
        self.bin = bindir
        self.user = run_as_user()
        self.dir = tempfile.mkdtemp(prefix="nofuss-pg-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.port = None
        self.running = False
        if self.user:
            shutil.chown(self.dir, user=self.user)

    def _run(self, *args, timeout=START_TIMEOUT):
        return subprocess.run([os.path.join(self.bin, args[0])] + list(args[1:]),
                              user=self.user, cwd=self.dir, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout, check=False)

    @property
    def base(self):
        return "postgresql://nofuss@127.0.0.1:%d" % self.port

    def init(self):
        r = self._run("initdb", "-D", self.data, "-U", "nofuss", "--auth=trust",
                      "-E", "UTF8", "--no-sync", "--locale=C")
        if r.returncode != 0:
            raise RuntimeError("initdb failed: %s" % r.stdout.decode(errors="replace"))
        self.port = free_port()

    def start(self):
        opts = ("-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories=%s "
                "-c max_connections=50 -c shared_buffers=64MB" % (self.port, self.dir))
        r = self._run("pg_ctl", "start", "-D", self.data, "-l", self.log, "-w",
                      "-t", str(START_TIMEOUT), "-o", opts, timeout=START_TIMEOUT + 10)
        if r.returncode != 0:
            raise RuntimeError("pg_ctl start failed: %s\n%s" % (
                r.stdout.decode(errors="replace"), self.server_log()))
        self.running = True

    def stop(self, mode="fast"):
        if not self.running:
            return
        r = self._run("pg_ctl", "stop", "-D", self.data, "-m", mode, "-w", "-t", "30",
                      timeout=40)
        if r.returncode != 0 and mode != "immediate":
            self._run("pg_ctl", "stop", "-D", self.data, "-m", "immediate", "-w", "-t", "20",
                      timeout=30)
        self._kill_leftover()
        self.running = False

    def _kill_leftover(self):
        """SIGKILL for a postmaster that survived pg_ctl (its pid file)."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def server_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def destroy(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class ClusterPerClass:
    """unittest mixin: one throw-away cluster for the test class (prints
    SKIPPED and skips without the server binaries), and a fresh database
    for each call of new_database()."""
    cluster = None
    bindir = None
    databases = 0

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bindir = find_bin()
        if cls.bindir is None:
            print("SKIPPED: PostgreSQL server binaries not found")
            raise unittest.SkipTest("PostgreSQL server binaries not found")
        cls.cluster = Cluster(cls.bindir)
        try:
            cls.cluster.init()
            cls.cluster.start()
        except Exception:
            cls.cluster.destroy()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.cluster is not None:
            cls.cluster.destroy()
        super().tearDownClass()

    def new_database(self, prefix):
        """Creates a database named prefix and a number; its URL."""
        ClusterPerClass.databases += 1
        name = "%s%d" % (prefix, ClusterPerClass.databases)
        r = subprocess.run([os.path.join(self.bindir, "psql"), "-X", "-q", "-d",
                            self.cluster.base + "/postgres", "-c", "CREATE DATABASE " + name],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise AssertionError("CREATE DATABASE %s: %s" % (name, r.stderr))
        return "%s/%s" % (self.cluster.base, name)


def main(argv):
    if len(argv) < 3 or argv[0] != "run" or argv[1] != "--":
        print("usage: pgcluster.py run -- COMMAND...", file=sys.stderr)
        return 2
    bindir = find_bin()
    if bindir is None:
        print("pgcluster: PostgreSQL server binaries not found (PG_BIN)", file=sys.stderr)
        return 3
    cluster = Cluster(bindir)
    try:
        cluster.init()
        cluster.start()
        env = dict(os.environ, NOFUSS_PG_BASE=cluster.base)
        return subprocess.run(argv[2:], env=env, check=False).returncode
    finally:
        cluster.destroy()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
