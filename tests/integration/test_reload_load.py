"""Reload under load: clients send checks without pause while versions.json
is rewritten 100 times, with good and broken contents, atomically and in
place. No request may fail, and every answer must be one of the rules that
were valid while it was in flight: the last good file loaded before it was
sent, or one whose reload was under way meanwhile. A broken file never
changes an answer."""
import threading
import time
import unittest

from harness import ServerTest, connect, read_response

REWRITES = 100


def rules_for(k):
    return [{"origin": {"device": "D%d" % i, "max": "9"},
             "target": {"version": "%d.%d" % (k, i), "firmware": "/f.bin"}} for i in range(20)]


BROKEN = [
    '[{"origin": {"device": "D1"}, "target": {"version": "1"}',          # truncated
    '[{"origin": {"device": "D1"}}]',                                     # no target
    '[{"origin": {"devise": "D1"}, "target": {"version": "1"}}]',         # no device
    '',                                                                   # empty
    '{"origin": {}}',                                                     # not an array
]


class ReloadUnderLoadTest(ServerTest):
    rules = rules_for(0)
    files = {"f.bin": b"\xe9" + b"x" * 100}

    def client(self, keep_alive, results, stop):
        req = (b"GET /D7/1.0 HTTP/1.1\r\nHost: x\r\n\r\n" if keep_alive
               else b"GET /D7/1.0 HTTP/1.0\r\nConnection: close\r\n\r\n")
        sock = None
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                if sock is None:
                    sock = connect(self.server.port)
                sock.sendall(req)
                r = read_response(sock, timeout=10)
                results.append((t0, time.monotonic(), r.status, r.body))
                if not keep_alive:
                    sock.close()
                    sock = None
            except OSError as e:
                results.append((t0, time.monotonic(), "error", repr(e)))
                sock = None
        if sock is not None:
            sock.close()

    def test_reload_under_load(self):
        self.start()
        stop = threading.Event()
        results = [[], []]
        clients = [threading.Thread(target=self.client, args=(ka, res, stop))
                   for ka, res in zip((True, False), results)]
        for c in clients:
            c.start()

        # Each rewrite: (k or None for broken, time written, time confirmed).
        timeline = []
        good = 0
        try:
            for n in range(REWRITES):
                before = self.reloads()
                t_write = time.monotonic()
                if n % 3 == 2:
                    self.data.write_rules(BROKEN[n % len(BROKEN)], atomic=(n % 2 == 0))
                    k = None
                else:
                    good += 1
                    k = good
                    self.data.write_rules(rules_for(k), atomic=(n % 2 == 0))
                self.wait_reloads(before + 1)
                line = self.reload_lines()[-1]
                self.assertIn("reload failed" if k is None else "reloaded", line)
                timeline.append((k, t_write, time.monotonic()))
                time.sleep(0.01)
        finally:
            stop.set()
            for c in clients:
                c.join(20)

        answers = results[0] + results[1]
        failures = [r for r in answers if r[2] != 200]
        self.assertEqual(failures, [], "requests failed during reloads")
        self.assertGreater(len(answers), 1000, "the clients never stopped sending")
        bad = [r for r in answers if r[3] not in allowed_bodies(timeline, r[0], r[1])]
        self.assertEqual(bad[:5], [], "answers from rules not valid at the time")
        print("\n%d checks during %d rewrites (%d good, %d broken): 0 failed, 0 wrong"
              % (len(answers), REWRITES, good, REWRITES - good))

    def reload_lines(self):
        return [l for l in self.server.stderr().splitlines() if "reload" in l]

    def reloads(self):
        return len(self.reload_lines())

    def wait_reloads(self, count, timeout=10):
        deadline = time.monotonic() + timeout
        while self.reloads() < count:
            self.assertLess(time.monotonic(), deadline, "no reload seen:\n" + self.server.stderr())
            time.sleep(0.002)


def body_for(k):
    return b'{"version":"%d.7","firmware":"/f.bin","spiffs":""}' % k


def allowed_bodies(timeline, sent, received):
    """The answers that were valid at some moment between sent and received:
    the good rules in force when the request was sent, and any good rules
    whose reload overlapped the request."""
    in_force = 0
    allowed = set()
    for k, t_write, t_done in timeline:
        if k is None:
            continue
        if t_done <= sent:
            in_force = k
        elif t_write <= received:
            allowed.add(k)
    allowed.add(in_force)
    return {body_for(k) for k in allowed}


if __name__ == "__main__":
    unittest.main()
