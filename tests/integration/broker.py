"""A real mosquitto broker for the MQTT tests: started on 127.0.0.1 and a
free port with a temporary configuration, stopped by stop(). Also the
mosquitto client commands the tests use, and free-port helpers. Every wait
is bounded."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PUB = shutil.which("mosquitto_pub")
MOSQUITTO_SUB = shutil.which("mosquitto_sub")
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
START_TIMEOUT = 10.0
RUN_TIMEOUT = 60.0
WAIT = 15.0  # a retained value to show up


def free_tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_port(ip):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def available():
    """True when the broker and its clients are installed."""
    return os.path.exists(MOSQUITTO) and bool(MOSQUITTO_PUB and MOSQUITTO_SUB)


class Broker:
    """mosquitto on 127.0.0.1:<free port>; users maps user -> password
    (None: anonymous allowed)."""

    def __init__(self, users=None):
        self.dir = tempfile.mkdtemp(prefix="nofuss-broker-")
        os.chmod(self.dir, 0o755)  # mosquitto may drop root for its own user
        self.port = free_tcp_port()
        conf = os.path.join(self.dir, "mosquitto.conf")
        lines = ["listener %d 127.0.0.1" % self.port, "persistence false"]
        if os.geteuid() == 0:
            lines.append("user root")
        if users:
            pwfile = os.path.join(self.dir, "passwd")
            for i, (user, password) in enumerate(users.items()):
                args = [MOSQUITTO_PASSWD, "-b", pwfile, user, password]
                if i == 0:
                    args.insert(1, "-c")
                subprocess.run(args, check=True, timeout=RUN_TIMEOUT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.chmod(pwfile, 0o644)
            lines += ["allow_anonymous false", "password_file " + pwfile]
        else:
            lines.append("allow_anonymous true")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = open(os.path.join(self.dir, "log"), "w+")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError("mosquitto exited: " + self.log.read())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("mosquitto did not start listening")
                time.sleep(0.05)

    def publish(self, topic, value, user=None, password=None):
        """Publishes value retained on topic (None clears it)."""
        args = [MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(self.port), "-t", topic, "-r"]
        if user is not None:
            args += ["-u", user, "-P", password]
        args += ["-n"] if value is None else ["-m", value]
        subprocess.run(args, check=True, timeout=RUN_TIMEOUT)

    def retained(self, topic):
        """The retained value of topic, or None within 2 s."""
        r = subprocess.run([MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(self.port),
                            "-C", "1", "-W", "2", "-t", topic],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=RUN_TIMEOUT)
        return r.stdout.decode().strip() if r.returncode == 0 else None

    def wait_for(self, topic, value, timeout=WAIT):
        """Waits until topic's retained value is value; fails the test after timeout."""
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            got = self.retained(topic)
            if got == value:
                return got
            time.sleep(0.1)
        raise AssertionError("%s: wanted %r, last seen %r" % (topic, value, got))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
