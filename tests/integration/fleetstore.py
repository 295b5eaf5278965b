"""What the fleet-store tests share (test_fleet_store.py, test_fleet_store_pg.py):
the store's numbers (server/store/store.h), a loopback TCP proxy that can cut
image downloads or alternate between two upstream nodes, and reading the
inventory: SQLite with python's sqlite3, read-only; PostgreSQL with psql.

The proxy serves one request per connection, as the simulator sends them
(Connection: close); every socket has a timeout, every loop a bound."""
import os
import socket
import sqlite3
import subprocess
import threading

# enum nf_update_state and enum nf_history_kind (store.h).
NONE, OFFERED, DOWNLOADING, DOWNLOADED, CONFIRMED, REVERTED, FAILED = range(7)
H_OFFERED, H_DOWNLOADING, H_DOWNLOADED, H_CONFIRMED, H_REVERTED, H_FAILED = range(1, 7)
CLIENT_NOFUSS_HEADER = 2

IO_TIMEOUT = 10.0
MAX_HEAD = 16384  # request head bytes the proxy reads at most

DEVICE_QUERY = ("SELECT key, version, state, checks, client, img0_path, img0_md5, img0_size, "
                "img0_bytes, img0_done, img1_path, img1_bytes, img1_done FROM devices")
HISTORY_QUERY = "SELECT d.key, h.kind FROM history h JOIN devices d ON d.id = h.device_id"


class Device:
    def __init__(self, row):
        (self.key, self.version, self.state, self.checks, self.client, self.img0_path,
         self.img0_md5, self.img0_size, self.img0_bytes, self.img0_done, self.img1_path,
         self.img1_bytes, self.img1_done) = row
        self.history = []


def _inventory(devices, history):
    out = {}
    for row in devices:
        d = Device(row)
        out[d.key] = d
    for key, kind in history:
        out[key].history.append(int(kind))
    return out


def sqlite_inventory(path):
    """{key: Device} from the SQLite file, opened read-only."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=IO_TIMEOUT)
    try:
        return _inventory(db.execute(DEVICE_QUERY).fetchall(),
                          db.execute(HISTORY_QUERY + " ORDER BY h.seq").fetchall())
    finally:
        db.close()


def psql(bindir, url, sql):
    """Rows of sql (tab-separated fields) through psql."""
    r = subprocess.run([os.path.join(bindir, "psql"), "-X", "-At", "-F", "\t", "-d", url,
                        "-c", sql], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise AssertionError("psql: %s" % r.stderr)
    return [line.split("\t") for line in r.stdout.splitlines() if line]


def pg_inventory(bindir, url):
    def typed(row):
        ints = (2, 3, 4, 7, 8, 9, 11, 12)
        return tuple(int(v) if i in ints else v for i, v in enumerate(row))
    return _inventory([typed(r) for r in psql(bindir, url, DEVICE_QUERY)],
                      psql(bindir, url, HISTORY_QUERY + " ORDER BY h.seq"))


def _read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data and len(data) < MAX_HEAD:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _header(head, name):
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.lower().encode():
            return v.strip().decode(errors="replace")
    return None


class Proxy:
    """A TCP proxy on 127.0.0.1: each connection goes to the next of
    upstreams (round robin). cut(head) -> bytes of the answer to pass before
    cutting both sides (an RST), or None to pass it all."""

    def __init__(self, upstreams, cut=None):
        self.upstreams = list(upstreams)
        self.cut = cut
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.turn = 0
        self.cuts = 0
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                port = self.upstreams[self.turn % len(self.upstreams)]
                self.turn += 1
            threading.Thread(target=self._serve, args=(conn, port), daemon=True).start()

    def _serve(self, conn, port):
        up = socket.socket()
        try:
            conn.settimeout(IO_TIMEOUT)
            up.settimeout(IO_TIMEOUT)
            head = _read_head(conn)
            limit = self.cut(head) if self.cut else None
            if limit is not None:
                # A small receive window: nofussd cannot hand the whole image
                # to the kernel before the cut, so it sees the cut itself.
                up.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            up.connect(("127.0.0.1", port))
            up.sendall(head)
            passed = 0
            while limit is None or passed < limit:
                chunk = up.recv(min(65536, limit - passed) if limit is not None else 65536)
                if not chunk:
                    break
                conn.sendall(chunk)
                passed += len(chunk)
            if limit is not None:
                with self.lock:
                    self.cuts += 1
                for s in (up, conn):  # RST, not FIN: a cut, not an end
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        except OSError:
            pass
        finally:
            up.close()
            conn.close()

    def url(self):
        return "http://127.0.0.1:%d/" % self.port

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


def cut_first_download_per_device(limit):
    """A cut() that cuts each device's first firmware download (by its
    x-ESP8266-STA-MAC) after limit bytes of the answer."""
    seen = set()
    lock = threading.Lock()

    def cut(head):
        line = head.split(b"\r\n", 1)[0]
        mac = _header(head, "x-ESP8266-STA-MAC")
        if mac is None or b"-fs" in line or b".bin" not in line:
            return None
        with lock:
            if mac in seen:
                return None
            seen.add(mac)
        return limit
    return cut
