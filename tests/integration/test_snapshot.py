"""The served state as one snapshot, built off the loop thread: a reload is
all or nothing (a broken rules file keeps the old rules and the old public
folder, even when the folder was swapped meanwhile), checks go on being
answered while a 16 MiB, 100,000-rule versions.json is parsed, missing
images are summed up rather than listed 100,000 times, and an image
changed after the snapshot was built is served with its new x-MD5 (hashed
on the hasher thread while its download waits)."""
import os
import signal
import threading
import time
import unittest

from harness import ServerTest, connect, esp_image, get, md5, read_response, wait_until

GOOD = [{"origin": {"device": "D", "max": "1.0"},
         "target": {"version": "1.1", "firmware": "/fw/d-1.1.bin"}}]
OLD_IMAGE = esp_image("old", 5000)
NEW_IMAGE = esp_image("new", 7000)
BIG_RULES = 100000
BIG_FILE_SIZE = 16 * 1024 * 1024  # nofussd's limit, NF_MAX_RULES_FILE


def big_rules_text():
    """A versions.json of BIG_RULES rules, just under BIG_FILE_SIZE bytes;
    every rule names an image that is not there, and device D is in the
    last one."""
    template = ('{"origin":{"device":"DEV%06d","min":"0.0.1","max":"1.0.0"},'
                '"target":{"version":"2.0.%06d","firmware":"/fw/dev%06d-2.0.bin",'
                '"note":"%s"}}')
    bare = len(template % (0, 0, 0, ""))
    pad = (BIG_FILE_SIZE - 1000) // BIG_RULES - bare - 2
    rules = [template % (i, i, i, "x" * pad) for i in range(BIG_RULES - 1)]
    rules.append('{"origin":{"device":"D"},"target":{"version":"9.9",'
                 '"firmware":"/fw/d-9.9.bin"}}')
    text = "[" + ",\n".join(rules) + "]\n"
    assert len(text) <= BIG_FILE_SIZE, len(text)
    return text


class SnapshotTest(ServerTest):
    rules = GOOD
    files = {"fw/d-1.1.bin": OLD_IMAGE}

    def reload_lines(self):
        return [l for l in self.server.stderr().splitlines() if "reload" in l]

    def wait_reload(self, before, word, timeout=60):
        self.assertTrue(wait_until(lambda: len(self.reload_lines()) > before, timeout),
                        "no reload:\n" + self.server.stderr())
        line = self.reload_lines()[before]
        self.assertIn(word, line)
        return line

    def test_broken_rules_keep_old_folder_and_rules(self):
        """All or nothing: the folder swapped in is not served until rules
        that load come with it."""
        self.start()
        port = self.server.port
        new = os.path.join(self.data.path, "public.new")
        os.makedirs(os.path.join(new, "fw"))
        with open(os.path.join(new, "fw", "d-1.1.bin"), "wb") as f:
            f.write(NEW_IMAGE)
        with open(os.path.join(new, "fw", "only-new.bin"), "wb") as f:
            f.write(NEW_IMAGE)
        os.rename(self.data.public, self.data.public + ".old")
        os.rename(new, self.data.public)

        n = len(self.reload_lines())
        self.data.write_rules('[{"origin": {"device": "D"}}]')
        line = self.wait_reload(n, "reload failed")
        self.assertIn("still serving the previous 1 rules", line)
        self.assertIn("rule 1: target: missing", line)
        # the old rules, and the old folder (now renamed away) behind them
        self.assertEqual(get(port, "/D/1.0").json()["version"], "1.1")
        r = get(port, "/fw/d-1.1.bin")
        self.assertEqual((r.status, r.body), (200, OLD_IMAGE))
        self.assertEqual(r.header("x-MD5"), md5(OLD_IMAGE))
        self.assertEqual(get(port, "/fw/only-new.bin").status, 404)

        # good rules: the new folder comes with them
        n = len(self.reload_lines())
        self.data.write_rules([{"origin": {"device": "D"}, "target": {"version": "1.2"}}])
        self.wait_reload(n, "reloaded")
        self.assertEqual(get(port, "/D/1.0").json()["version"], "1.2")
        r = get(port, "/fw/d-1.1.bin")
        self.assertEqual((r.status, r.body), (200, NEW_IMAGE))
        self.assertEqual(r.header("x-MD5"), md5(NEW_IMAGE))
        self.assertEqual(get(port, "/fw/only-new.bin").status, 200)

    def checker(self, answers, stop):
        """Sends path-form checks for device D on one keep-alive
        connection until stop is set; records (time, status, body)."""
        sock = connect(self.server.port)
        try:
            while not stop.is_set():
                sock.sendall(b"GET /D/0.5 HTTP/1.1\r\nHost: x\r\n\r\n")
                r = read_response(sock, timeout=60)
                answers.append((time.monotonic(), r.status, r.body))
        finally:
            sock.close()

    def test_checks_answered_during_a_large_reload(self):
        self.start()
        text = big_rules_text()
        answers, stop = [], threading.Event()
        client = threading.Thread(target=self.checker, args=(answers, stop))
        client.start()
        try:
            self.assertTrue(wait_until(lambda: len(answers) > 10), "no answers at all")
            n = len(self.reload_lines())
            self.data.write_rules(text)
            written = time.monotonic()
            line = self.wait_reload(n, "reloaded", timeout=300)
            seen = time.monotonic()
            self.assertIn(": %d rules" % BIG_RULES, line)
            self.assertTrue(wait_until(lambda: answers[-1][2] != answers[0][2], 30))
        finally:
            stop.set()
            client.join(60)
        old = b'{"version":"1.1","firmware":"/fw/d-1.1.bin","spiffs":""}'
        new = b'{"version":"9.9","firmware":"/fw/d-9.9.bin","spiffs":""}'
        self.assertEqual([a for a in answers if a[1] != 200 or a[2] not in (old, new)], [])
        # checks were answered while the new rules were being built
        during = [a for a in answers if written <= a[0] <= seen]
        self.assertGreater(len(during), 0, "no check answered during the reload")
        # once served, the new rules answer every check
        switched = [i for i, a in enumerate(answers) if a[2] == new][0]
        self.assertTrue(all(a[2] == new for a in answers[switched:]))
        # 99,999 rules name missing images: ten lines and one that counts the rest
        err = self.server.stderr()
        self.assertEqual(err.count(": no such file"), 10)
        self.assertIn("and %d more rules name missing or empty images" % (BIG_RULES - 10), err)

    def test_image_replaced_in_place_gets_new_md5(self):
        self.start()
        port = self.server.port
        r = get(port, "/fw/d-1.1.bin")
        self.assertEqual(r.header("x-MD5"), md5(OLD_IMAGE))
        self.assertEqual(r.header("ETag"), '"%s"' % md5(OLD_IMAGE))

        # rewritten in place, same size, another stamp
        changed = esp_image("chg", len(OLD_IMAGE))
        path = self.data.add_file("fw/d-1.1.bin", changed)
        os.utime(path, (1, 1))
        for _ in range(2):  # hashed once, then remembered
            r = get(port, "/fw/d-1.1.bin", {"x-ESP8266-mode": "sketch"})
            self.assertEqual((r.status, r.body), (200, changed))
            self.assertEqual(r.header("x-MD5"), md5(changed))
            self.assertEqual(r.header("ETag"), '"%s"' % md5(changed))
        # an updater running exactly this image is told "no update"
        r = get(port, "/fw/d-1.1.bin", {"x-ESP8266-mode": "sketch",
                                        "x-ESP8266-sketch-md5": md5(changed)})
        self.assertEqual(r.status, 304)

        # replaced by rename, and the rules reloaded: still the right MD5
        tmp = self.data.add_file("fw/d-1.1.bin.tmp", NEW_IMAGE)
        os.rename(tmp, path)
        n = len(self.reload_lines())
        self.server.signal(signal.SIGHUP)
        self.assertIn("1 hashed", self.wait_reload(n, "reloaded"))
        r = get(port, "/fw/d-1.1.bin")
        self.assertEqual((r.body, r.header("x-MD5")), (NEW_IMAGE, md5(NEW_IMAGE)))

    def test_many_downloads_wait_for_one_md5(self):
        """Downloads of an image no rule names wait, suspended, for one MD5;
        checks are answered meanwhile."""
        image = esp_image("unnamed", 8 * 1024 * 1024)
        self.data.add_file("fw/unnamed.bin", image)
        self.start()
        port = self.server.port
        results = []

        def download():
            r = get(port, "/fw/unnamed.bin", {"x-ESP8266-mode": "sketch"})
            results.append((r.status, r.header("x-MD5"), r.body == image))

        threads = [threading.Thread(target=download) for _ in range(8)]
        for t in threads:
            t.start()
        self.assertEqual(get(port, "/D/1.0").json()["version"], "1.1")
        for t in threads:
            t.join(60)
        self.assertEqual(results, [(200, md5(image), True)] * 8)


if __name__ == "__main__":
    unittest.main()
