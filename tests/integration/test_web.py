"""The back office page (issue 13; docs/WEB.md) in a real browser: Debian's
headless chromium driven by chromedriver through python3-selenium, against
the real nofussd with a SQLite store and a simulated fleet (`nofuss
fleet`, the real device core). Prints SKIPPED and passes when chromium,
chromedriver or selenium are absent (scripts/bootstrap.sh installs them).

The story: sign in, see the fleet, upload a release, start a rollout,
watch phase 1 fill, the crash-at-boot release halts it and the page shows
the reason, abort, open a reverted device and read its timeline, sign out.
What the page shows is checked against the API's figures. Also: hostile
device names shown as text, a read session refused a write (and shown no
write control), a write without the CSRF token (403), an expired session
(401, back to sign-in). A screenshot of every screen goes to
build/test-output/web/ (the path is printed)."""
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

from harness import DataDir, Server, check_headers, get
from test_releases import ADMIN_TOKEN, NOFUSS, READ_TOKEN, write_tokens
from test_tls import OPENSSL, make_cert
from test_rollout_offers import DEVICE, RolloutFleet

try:
    from selenium import webdriver
except ImportError:  # a Python of its own (pyenv): Debian's package is there
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from selenium import webdriver
    except ImportError:
        webdriver = None
if webdriver is not None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
OUT = os.path.join(os.path.dirname(os.path.dirname(NOFUSS or ".")), "test-output", "web")
HOSTILE_TYPE = "<img src=x onerror=alert(1)>"
HOSTILE_VERSION = "\"><script>alert(2)</script>"
FLEET = 300


def browser_missing():
    missing = [n for n, ok in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER),
                               ("python3-selenium", webdriver)) if not ok]
    return ", ".join(missing)


class WebCase(RolloutFleet):
    """nofussd with a store and an admin listener, and a headless chromium."""

    server_args = ()

    def setUp(self):
        missing = browser_missing()
        if missing:
            print("SKIPPED: %s not installed (scripts/bootstrap.sh)" % missing)
            self.skipTest("%s not installed" % missing)
        super().setUp()
        if self.server_args:
            self.srv.stop()
            self.start(*self.server_args)
        os.makedirs(OUT, exist_ok=True)
        self.profile = tempfile.mkdtemp(prefix="nofuss-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--user-data-dir=" + self.profile):
            opts.add_argument(flag)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER)
                                       if hasattr(webdriver, "ChromeService") else
                                       webdriver.chrome.service.Service(CHROMEDRIVER),
                                       options=opts)
        self.driver.set_page_load_timeout(30)

    def tearDown(self):
        try:
            if getattr(self, "driver", None) is not None:
                self.driver.quit()
        finally:
            shutil.rmtree(getattr(self, "profile", "/nonexistent"), ignore_errors=True)
            super().tearDown()

    # ---- the browser ----

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port  # the admin port (it changes on a restart)

    def open(self, hash_=""):
        self.driver.get(self.base + "/ui/" + hash_)

    def go(self, hash_):
        self.driver.execute_script("location.hash = arguments[0]", hash_)

    def wait(self, fn, what, timeout=20):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = fn()
                if last:
                    return last
            except Exception as e:  # an element replaced by a live refresh
                last = e
            time.sleep(0.2)
        self.fail("%s: not within %d s (last: %r)\n%s" % (what, timeout, last, self.text()[-2000:]))

    def text(self, css="body"):
        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def wait_text(self, needle, css="body", timeout=20):
        return self.wait(lambda: needle in self.text(css), "%r in %s" % (needle, css), timeout)

    def shot(self, name):
        path = os.path.join(OUT, name + ".png")
        self.driver.save_screenshot(path)
        print("screenshot: %s" % path)

    def sign_in(self, token):
        self.open()
        box = self.wait(lambda: self.driver.find_element(By.ID, "token").is_displayed() and
                        self.driver.find_element(By.ID, "token"), "the sign-in form")
        box.send_keys(token)
        self.driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
        self.wait_text("Signed in as", "#who")

    def errors(self, *expected):
        """The browser console's errors since the last call, but for the
        browser's own line on an answer the test asked for (a refusal it
        provoked: expected holds a piece of its URL)."""
        return [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE" and
                not (e.get("source") == "network" and any(x in e["message"] for x in expected))]

    def no_alert(self):
        try:
            alert = self.driver.switch_to.alert
            self.fail("an alert fired: %r" % alert.text)
        except NoAlertPresentException:
            pass

    def cookie(self):
        c = self.driver.get_cookie("nofuss_session")
        return c["value"] if c else None

    def raw(self, method, path, headers=None, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        try:
            return r.status, json.loads(data), r
        except ValueError:
            return r.status, data, r

    def api(self, path, token=READ_TOKEN):
        st, out, _ = self.request("GET", path, token=token)
        self.assertEqual(st, 200, out)
        return out

    def number(self, css):
        return int(self.text(css).replace(",", ""))


class StoryTest(WebCase):

    def test_the_whole_story(self):
        # A fleet of FLEET devices at 1.0.0 checks in once.
        self.fleet(FLEET, lambda: self.count("SELECT COUNT(*) FROM devices") >= FLEET, limit=60)

        # Sign in.
        self.open()
        self.wait(lambda: self.driver.find_element(By.ID, "token").is_displayed(), "sign-in")
        self.assertFalse(self.driver.find_element(By.ID, "nav").is_displayed())
        self.shot("01-signin")
        self.sign_in(ADMIN_TOKEN)
        self.assertIn("ops (admin", self.text("#who"))

        # The fleet: the numbers the API gives.
        summary = self.api("/api/v1/summary")
        self.assertEqual(summary["devices"], FLEET)
        self.wait(lambda: self.number("[data-testid=fleet-stats] .stat-value") == FLEET,
                  "the fleet's device count")
        page = self.text()
        self.assertIn("%s\n1.0.0" % DEVICE, page.replace(" 1.0.0", "\n1.0.0"))
        self.assertEqual(self.number("td[data-state=none]"), summary["by_state"]["none"])
        self.shot("02-fleet")

        # Upload a release: first a bad version (the error next to its field).
        crash = os.path.join(self.tmp, "crash.bin")
        with open(crash, "wb") as f:
            f.write(self.mkimage("2.0.0", crash=True))
        self.go("#/releases")
        self.wait_text("Upload a release")
        form = self.driver.find_element(By.CSS_SELECTOR, "form.card")
        form.find_element(By.NAME, "device").send_keys(DEVICE)
        form.find_element(By.NAME, "version").send_keys("no digits")
        form.find_element(By.NAME, "file").send_keys(crash)
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        version_error = self.wait(lambda: self.driver.find_element(
            By.CSS_SELECTOR, "[name=version] ~ .field-error").text, "the version's error")
        self.assertIn("version", version_error)
        self.shot("03-release-error")
        box = form.find_element(By.NAME, "version")
        box.clear()
        box.send_keys("2.0.0")
        form.find_element(By.NAME, "file").send_keys(crash)
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        self.wait_text("uploaded", "#status")
        rel = self.api("/api/v1/releases")["releases"][0]
        row = self.wait(lambda: self.driver.find_element(By.CSS_SELECTOR,
                                                         "tr[data-release='%d']" % rel["id"]),
                        "the release's row")
        self.assertIn(rel["firmware"]["sha256"], row.text)
        self.assertIn(rel["firmware"]["md5"], row.text)
        self.shot("04-releases")

        # Start a rollout with the form: the defaults filled in, changed here.
        self.go("#/rollouts")
        self.wait_text("Start a rollout")
        self.assertEqual(self.driver.find_element(By.NAME, "phases").get_attribute("value"),
                         "1, 10, 50, 100")
        self.assertEqual(self.driver.find_element(By.NAME, "error_threshold")
                         .get_attribute("value"), "5")
        self.shot("05-rollout-form")
        for name, value in (("phases", "10, 50, 100"), ("soak", "2"), ("silent_after", "60")):
            box = self.driver.find_element(By.NAME, name)
            box.clear()
            box.send_keys(value)
        self.driver.find_element(By.CSS_SELECTOR, "form.card button[type=submit]").click()
        self.wait(lambda: "#/rollout/" in self.driver.current_url, "the rollout's screen")
        rid = int(self.driver.current_url.rsplit("/", 1)[1])
        self.wait_text("running", "[data-testid=rollout-state]")

        # The fleet checks in; the page (live) watches phase 1 fill, then halt.
        args = [NOFUSS, "fleet", "--server", "http://127.0.0.1:%d/" % self.srv.port,
                "--devices", str(FLEET), "--device", DEVICE, "--version", "1.0.0",
                "--mac-base", "5C:CF:7F:00:00:00", "--interval", "0.5", "--ramp", "2",
                "--reboot-delay", "0.2", "--duration", "60", "--seed", "7", "--quiet"]
        fleet = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            offered = self.wait(lambda: self.number("tr[data-phase='0'] [data-col=offered]"),
                                "phase 1's offers", timeout=60)
            self.assertGreater(offered, 0)
            self.wait_text("halted", "[data-testid=rollout-state]", timeout=60)
        finally:
            fleet.terminate()
            fleet.communicate(timeout=60)
        ro = self.api("/api/v1/rollouts/%d" % rid)
        self.assertEqual(ro["state"], "halted")
        reason = self.wait(lambda: self.text("[data-testid=rollout-reason]"), "the reason")
        self.assertEqual(reason, "Reason: " + ro["reason"])
        self.assertIn("error gate", reason)
        self.wait(lambda: self.number("tr[data-phase='0'] [data-col=reverted]") ==
                  self.api("/api/v1/rollouts/%d" % rid)["phase_counts"][0]["reverted"],
                  "phase 1's reverted count as the API's")
        self.shot("06-rollout-halted")

        # Its release cannot be deleted while the rollout is not over: the
        # page says why, in the API's words.
        self.go("#/releases")
        self.wait(lambda: self.driver.find_element(
            By.CSS_SELECTOR, "[data-delete='%d']" % rel["id"]), "the delete button").click()
        self.wait(lambda: self.driver.find_element(
            By.CSS_SELECTOR, "dialog[open] button.danger"), "the dialog").click()
        refusal = self.wait(lambda: self.text("[data-testid=release-error]"), "the refusal")
        st, out, _ = self.request("DELETE", "/api/v1/releases/%d" % rel["id"])
        self.assertEqual(st, 409, out)
        self.assertEqual(refusal, "Release #%d cannot be deleted: %s" % (rel["id"], out["error"]))
        self.shot("06b-release-delete-refused")
        self.go("#/rollout/%d" % rid)
        self.wait_text("halted", "[data-testid=rollout-state]")

        # Abort, confirmed in the dialog.
        self.driver.find_element(By.CSS_SELECTOR, "button[data-action=abort]").click()
        self.wait(lambda: self.driver.find_element(By.CSS_SELECTOR, "dialog[open]"), "the dialog")
        self.shot("07-abort-confirm")
        self.driver.find_element(By.CSS_SELECTOR, "dialog[open] button.danger").click()
        self.wait_text("aborted", "[data-testid=rollout-state]")
        self.assertEqual(self.api("/api/v1/rollouts/%d" % rid)["state"], "aborted")

        # A reverted device and its timeline.
        reverted = self.api("/api/v1/devices?state=reverted&limit=1")
        self.assertGreater(reverted["total"], 0)
        self.go("#/devices?state=reverted")
        self.wait_text("of %d" % reverted["total"])
        self.shot("08-devices-reverted")
        key = reverted["devices"][0]["key"]
        self.driver.find_element(By.LINK_TEXT, key).click()
        self.wait_text("History")
        timeline = self.text("ol.timeline")
        for kind in ("offered", "downloaded", "reverted"):
            self.assertIn(kind, timeline)
        dec = self.api("/api/v1/devices/%s/decision" % key)
        self.assertIn(dec["explanation"], self.text("[data-testid=decision]"))
        self.shot("09-device")
        # Tag it from the page: the API sees the tag, the page shows it.
        self.driver.find_element(By.NAME, "tag").send_keys("attic")
        self.driver.find_element(By.NAME, "tag").submit()
        self.wait(lambda: "attic" in self.text("ul.tags"), "the tag")
        self.assertEqual(self.api("/api/v1/devices/%s" % key)["tags"], ["attic"])

        # The audit log names the session's token.
        self.go("#/audit")
        self.wait_text("rollout.start")
        audit = self.text()
        self.assertIn("session.start", audit)
        entries = self.api("/api/v1/audit?limit=100")["entries"]
        starts = [e for e in entries if e["action"] == "rollout.start"]
        self.assertEqual(starts[0]["token"], "ops")
        self.shot("10-audit")

        # 375 px wide: the fleet still reads.
        self.driver.set_window_size(375, 800)
        self.go("#/fleet")
        self.wait(lambda: self.number("[data-testid=fleet-stats] .stat-value") == FLEET, "fleet")
        self.shot("11-fleet-375px")
        self.driver.set_window_size(1280, 900)

        # Sign out: the cookie's session is over on the server too.
        cookie = self.cookie()
        self.driver.find_element(By.ID, "signout").click()
        self.wait(lambda: self.driver.find_element(By.ID, "token").is_displayed(), "sign-in")
        st, out, _ = self.raw("GET", "/api/v1/summary", {"Cookie": "nofuss_session=" + cookie})
        self.assertEqual(st, 401, out)
        self.shot("12-signed-out")
        self.assertEqual(self.errors("version=no+digits - Failed to load resource: the server "
                                     "responded with a status of 400",
                                     "/api/v1/releases/%d - Failed to load resource: the server "
                                     "responded with a status of 409" % rel["id"]), [])


class FilledFleetTest(WebCase):
    """The fleet screen against a store filled by admin_fill (many types,
    versions and states, some held back): every figure the API's."""

    def test_fleet_figures_match_the_api(self):
        fill = os.path.join(os.path.dirname(os.path.dirname(NOFUSS)), "tests", "integration",
                            "admin_fill")
        self.srv.stop()
        out = subprocess.run([fill, "sqlite://" + self.db, "2000", str(int(time.time() * 1000))],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        plan = [json.loads(line) for line in out.stdout.splitlines()]
        self.start()
        summary = self.api("/api/v1/summary")
        held = sum(1 for d in plan if d["answer"] == "held")
        self.assertGreater(held, 0)
        self.assertEqual(summary["held_back"], held)
        self.sign_in(READ_TOKEN)
        self.wait(lambda: self.number("[data-testid=fleet-stats] .stat-value") == 2000, "fleet")
        stats = [int(e.text.replace(",", "")) for e in self.driver.find_elements(
            By.CSS_SELECTOR, "[data-testid=fleet-stats] .stat-value")]
        day = self.api("/api/v1/devices?seen_before=24h&limit=1")["total"]
        week = self.api("/api/v1/devices?seen_before=7d&limit=1")["total"]
        self.assertEqual(stats, [2000, summary["seen_24h"], day, week, held])
        for state, n in summary["by_state"].items():
            self.assertEqual(self.number("td[data-state=%s]" % state), n, state)
        rows = self.driver.find_elements(By.CSS_SELECTOR, ".table-wrap")[-1].text
        for r in summary["by_type_version"]:
            self.assertIn("%s %s %s" % (r["type"], r["version"], format(r["devices"], ",")),
                          rows)
        self.shot("16-fleet-filled")
        self.assertEqual(self.errors(), [])


class HostileTest(WebCase):

    def test_hostile_names_are_text(self):
        for i, (dev, ver) in enumerate(((HOSTILE_TYPE, "1.0.0"), ("LIGHT", HOSTILE_VERSION))):
            r = get(self.srv.port, "/", check_headers("5C:CF:7F:AA:00:%02X" % i, dev, ver,
                                                      build="<b>build</b>"))
            self.assertIn(r.status, (200, 304), r.body)
        self.wait(lambda: self.api("/api/v1/summary")["devices"] == 2, "the store")
        self.sign_in(READ_TOKEN)
        self.wait_text(HOSTILE_TYPE)
        self.wait_text(HOSTILE_VERSION)
        # Live refreshes replace what they drew: the page does not grow.
        sizes = []
        for _ in range(3):
            stamp = self.wait(lambda: self.text("p.hint:last-child"), "the fleet's stamp")
            self.wait(lambda: self.text("p.hint:last-child") != stamp, "a refresh", timeout=30)
            sizes.append(self.driver.execute_script(
                "return document.getElementsByTagName('*').length"))
        self.assertEqual(len(set(sizes)), 1, sizes)
        # A hidden tab polls nothing: no refresh (each is one request for the
        # overview) starts between hiding and showing it again; a refresh in
        # flight when it was hidden may finish.
        self.driver.execute_script(
            "window.nfTicks = []; const f = window.fetch;"
            "window.fetch = (u, ...a) => { if (String(u).endsWith('/overview'))"
            " window.nfTicks.push(Date.now()); return f(u, ...a); };"
            "document.addEventListener('visibilitychange', () => {"
            " if (document.hidden) window.nfHiddenAt = Date.now();"
            " else window.nfShownAt = Date.now(); });")
        first = self.driver.current_window_handle
        self.driver.switch_to.new_window("tab")
        self.driver.get(self.base + "/ui/icon.svg")
        time.sleep(12)
        self.driver.switch_to.window(first)
        self.wait(lambda: self.driver.execute_script("return window.nfShownAt"), "shown again")
        hidden_at, shown_at = self.driver.execute_script(
            "return [window.nfHiddenAt, window.nfShownAt]")
        self.assertIsNotNone(hidden_at, "the tab was never hidden")
        self.assertGreater(shown_at - hidden_at, 10000)
        self.wait(lambda: any(t >= shown_at for t in
                              self.driver.execute_script("return window.nfTicks")),
                  "polling again once shown", timeout=20)
        ticks = self.driver.execute_script("return window.nfTicks")
        self.assertEqual([t for t in ticks if hidden_at <= t < shown_at], [], ticks)
        self.go("#/devices")
        self.wait_text(HOSTILE_TYPE)
        self.driver.find_element(By.LINK_TEXT, "5C:CF:7F:AA:00:00").click()
        self.wait_text("History")
        self.assertIn(HOSTILE_TYPE, self.text("dl.facts"))
        self.assertIn("<b>build</b>", self.text("dl.facts"))
        self.shot("13-hostile-device")
        self.no_alert()
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, "img, script:not([src]), b"),
                         [])
        self.assertEqual(self.errors(), [])


class ReadSessionTest(WebCase):

    def test_read_session_sees_and_cannot_write(self):
        self.upload(self.mkimage("2.0.0"), device=DEVICE, version="2.0.0")
        self.sign_in(READ_TOKEN)
        self.assertIn("read", self.text("#who"))
        self.go("#/releases")
        self.wait_text("2.0.0")
        self.go("#/rollouts")
        self.wait_text("No rollout yet")
        # No write control shown.
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, "form.card"), [])
        self.go("#/releases")
        self.wait_text("2.0.0")
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, "[data-delete], form.card"),
                         [])
        self.shot("14-read-session-releases")
        self.assertEqual(self.errors(), [])
        # The API refuses it anyway, with the CSRF token.
        cookie = self.cookie()
        st, sess, _ = self.raw("GET", "/api/v1/session", {"Cookie": "nofuss_session=" + cookie})
        self.assertEqual((st, sess["role"], sess["name"]), (200, "read", "grafana"))
        st, out, _ = self.raw("POST", "/api/v1/rollouts/halt-all",
                              {"Cookie": "nofuss_session=" + cookie, "X-CSRF-Token": sess["csrf"]})
        self.assertEqual(st, 403, out)
        self.assertIn("read role", out["error"])

    def test_csrf_token_needed_for_writes(self):
        st, sess, r = self.raw("POST", "/api/v1/session", {"Content-Type": "application/json"},
                               json.dumps({"token": ADMIN_TOKEN}))
        self.assertEqual(st, 200, sess)
        set_cookie = r.getheader("Set-Cookie")
        for attr in ("HttpOnly", "SameSite=Strict", "Max-Age=", "Path=/"):
            self.assertIn(attr, set_cookie)
        self.assertNotIn("Secure", set_cookie)  # plain HTTP here; TLS adds it
        cookie = {"Cookie": set_cookie.split(";")[0]}
        for headers in (cookie, dict(cookie, **{"X-CSRF-Token": "0" * 64}),
                        dict(cookie, **{"X-CSRF-Token": sess["csrf"][:-1]})):
            st, out, _ = self.raw("POST", "/api/v1/rollouts/halt-all", headers)
            self.assertEqual(st, 403, out)
            self.assertIn("CSRF", out["error"])
        st, out, _ = self.raw("POST", "/api/v1/rollouts/halt-all",
                              dict(cookie, **{"X-CSRF-Token": sess["csrf"]}))
        self.assertEqual(st, 200, out)
        # Reads need no CSRF token; bearer clients are unaffected.
        self.assertEqual(self.raw("GET", "/api/v1/summary", cookie)[0], 200)
        st, out, _ = self.request("POST", "/api/v1/rollouts/halt-all")
        self.assertEqual(st, 200, out)
        # The audit log names the token the session came from.
        entries = self.api("/api/v1/audit?limit=10")["entries"]
        refused = [e for e in entries if e["status"] == 403]
        self.assertEqual(len(refused), 3)
        self.assertTrue(all(e["token"] == "ops" for e in refused), refused)
        # A bad token gets no session.
        st, out, r = self.raw("POST", "/api/v1/session", {}, json.dumps({"token": "x" * 20}))
        self.assertEqual(st, 401, out)
        self.assertIsNone(r.getheader("Set-Cookie"))

    def test_revoking_a_token_ends_its_sessions(self):
        sessions = {}
        for token in (ADMIN_TOKEN, READ_TOKEN):
            st, sess, r = self.raw("POST", "/api/v1/session",
                                   {"Content-Type": "application/json"},
                                   json.dumps({"token": token}))
            self.assertEqual(st, 200, sess)
            sessions[sess["role"]] = ({"Cookie": r.getheader("Set-Cookie").split(";")[0]},
                                      sess["csrf"])
        admin, admin_csrf = sessions["admin"]
        reader, _ = sessions["read"]
        self.assertEqual(self.raw("GET", "/api/v1/summary", reader)[0], 200)
        # The read token is revoked; the admin token is made read-only.
        write_tokens(self.tokens, "%s read ops\n" % ADMIN_TOKEN)
        time.sleep(1.2)  # the file is looked at once a second at most
        st, out, _ = self.raw("GET", "/api/v1/summary", reader)
        self.assertEqual(st, 401, out)
        self.assertIn("ended", out["error"])
        st, out, _ = self.raw("GET", "/api/v1/session", reader)
        self.assertEqual((st, out["role"]), (200, None), out)
        st, out, _ = self.raw("GET", "/api/v1/session", admin)
        self.assertEqual((st, out["role"], out["name"]), (200, "read", "ops"), out)
        st, out, _ = self.raw("POST", "/api/v1/rollouts/halt-all",
                              dict(admin, **{"X-CSRF-Token": admin_csrf}))
        self.assertEqual(st, 403, out)
        self.assertIn("read role", out["error"])
        # Put back, the token signs in again, but the ended session stays ended.
        write_tokens(self.tokens, "%s admin ops\n%s read grafana\n" % (ADMIN_TOKEN, READ_TOKEN))
        time.sleep(1.2)
        self.assertEqual(self.raw("GET", "/api/v1/summary", reader)[0], 401)
        st, out, _ = self.raw("POST", "/api/v1/rollouts/halt-all",
                              dict(admin, **{"X-CSRF-Token": admin_csrf}))
        self.assertEqual(st, 200, out)

    def test_headers_of_page_and_api(self):
        st, _, r = self.raw("GET", "/ui/")
        self.assertEqual(st, 200)
        self.assertEqual(r.getheader("Content-Type"), "text/html; charset=utf-8")
        csp = r.getheader("Content-Security-Policy")
        for part in ("default-src 'self'", "script-src 'self'", "object-src 'none'",
                     "frame-ancestors 'none'"):
            self.assertIn(part, csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertEqual(r.getheader("X-Frame-Options"), "DENY")
        self.assertEqual(r.getheader("X-Content-Type-Options"), "nosniff")
        etag = r.getheader("ETag")
        st, _, r = self.raw("GET", "/ui/index.html", {"If-None-Match": etag})
        self.assertEqual(st, 304)
        for name, ctype in (("app.js", "text/javascript; charset=utf-8"),
                            ("style.css", "text/css; charset=utf-8")):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            conn.request("GET", "/ui/" + name)
            r = conn.getresponse()
            r.read()
            conn.close()
            self.assertEqual((r.status, r.getheader("Content-Type")), (200, ctype), name)
            self.assertEqual(r.getheader("Cache-Control"), "no-cache")
        for bad in ("/ui/../tokens", "/ui/.hidden.js", "/ui/nope.js", "/ui/x.txt"):
            self.assertEqual(self.raw("GET", bad)[0], 404, bad)
        st, out, r = self.request("GET", "/api/v1/summary")
        self.assertEqual(r.getheader("Cache-Control"), "no-store")
        self.assertEqual(r.getheader("X-Frame-Options"), "DENY")
        self.assertIn("frame-ancestors 'none'", r.getheader("Content-Security-Policy"))
        st, _, r = self.raw("GET", "/")
        self.assertEqual((st, r.getheader("Location")), (302, "/ui/"))
        st, _, r = self.raw("GET", "/favicon.ico")
        self.assertEqual((st, r.getheader("Location")), (302, "/ui/icon.svg"))


class DropTest(WebCase):

    def test_drop_a_file_to_upload_it(self):
        image = self.mkimage("3.0.0")
        self.sign_in(ADMIN_TOKEN)
        self.go("#/releases")
        self.wait_text("Upload a release")
        form = self.driver.find_element(By.CSS_SELECTOR, "form.card")
        form.find_element(By.NAME, "device").send_keys(DEVICE)
        form.find_element(By.NAME, "version").send_keys("3.0.0")
        zone = form.find_element(By.CSS_SELECTOR, ".drop")
        # A file dragged over the zone, as the browser makes one (its own
        # DataTransfer and File): the zone shows it would take it.
        self.driver.execute_script("""
            const [zone, b64, name] = arguments;
            const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            window.dragged = new DataTransfer();
            window.dragged.items.add(new File([raw], name, {type: "application/octet-stream"}));
            zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: window.dragged,
                                                          bubbles: true, cancelable: true}));
        """, zone, base64.b64encode(image).decode(), "fw-3.0.0.bin")
        self.assertIn("over", zone.get_attribute("class").split())
        self.shot("16-release-drag-over")
        # Dropped: the page names it; every line of progress is recorded.
        self.driver.execute_script("""
            const [zone, form] = arguments;
            const note = form.querySelector("progress").nextElementSibling;
            window.notes = [];
            new MutationObserver(() => window.notes.push(note.textContent))
                .observe(note, {childList: true, characterData: true, subtree: true});
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: window.dragged,
                                                      bubbles: true, cancelable: true}));
        """, zone, form)
        self.assertNotIn("over", zone.get_attribute("class").split())
        self.wait(lambda: "fw-3.0.0.bin" in form.text, "the dropped file's name")
        self.assertEqual(self.driver.execute_script(
            "return arguments[0].elements.file.files[0].name", form), "fw-3.0.0.bin")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        self.wait_text("uploaded", "#status")
        rel = self.api("/api/v1/releases")["releases"][0]
        self.assertEqual((rel["device"], rel["version"]), (DEVICE, "3.0.0"))
        self.assertEqual(rel["firmware"]["md5"], hashlib.md5(image).hexdigest())
        # The progress ended at every byte sent ("N of N").
        sent = [n.split(" of ") for n in self.driver.execute_script("return window.notes")
                if " of " in n]
        self.assertTrue(sent, "no progress shown")
        self.assertEqual(sent[-1][0], sent[-1][1], sent)
        self.assertEqual(self.errors(), [])


class ExpiryTest(WebCase):

    server_args = ("--admin-session-lifetime", "2")

    def test_expired_session_back_to_sign_in(self):
        self.sign_in(ADMIN_TOKEN)
        cookie = self.cookie()
        time.sleep(2.5)
        st, out, _ = self.raw("GET", "/api/v1/summary", {"Cookie": "nofuss_session=" + cookie})
        self.assertEqual(st, 401, out)
        self.assertIn("expired", out["error"])
        # The page's next call (live refresh of the fleet) brings back sign-in.
        self.wait(lambda: self.driver.find_element(By.ID, "token").is_displayed(),
                  "sign-in after expiry", timeout=20)
        self.assertIn("session has ended", self.text("#signin-error"))
        self.assertFalse(self.driver.find_element(By.ID, "nav").is_displayed())
        self.assertFalse(self.driver.find_element(By.ID, "signout").is_displayed())
        self.shot("15-expired")


@unittest.skipIf(OPENSSL is None, "no openssl command")
class SecureCookieTest(unittest.TestCase):
    """Under admin TLS the session cookie is Secure (no browser needed)."""

    def setUp(self):
        self.data = DataDir()
        self.certs = tempfile.mkdtemp(prefix="nofuss-webtls-")
        self.cert, self.key = make_cert(self.certs, "a")
        tokens = os.path.join(self.data.path, "tokens")
        write_tokens(tokens, ADMIN_TOKEN + " admin ops\n")
        self.srv = Server(self.data, "--store", "off", "--admin-port", "0",
                          "--admin-token-file", tokens, "--admin-tls-cert", self.cert,
                          "--admin-tls-key", self.key)
        line = self.srv.wait_for(r"admin API at https://127\.0\.0\.1:(\d+)/")
        self.port = int(re.search(r":(\d+)/", line).group(1))

    def tearDown(self):
        try:
            self.assertEqual(self.srv.stop(), 0, self.srv.stderr())
        finally:
            shutil.rmtree(self.certs, ignore_errors=True)
            self.data.cleanup()

    def test_cookie_secure_under_tls(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=30)
        try:
            conn.request("POST", "/api/v1/session", body=json.dumps({"token": ADMIN_TOKEN}))
            r = conn.getresponse()
            body = json.loads(r.read())
            self.assertEqual(r.status, 200, body)
            attrs = [a.strip() for a in r.getheader("Set-Cookie").split(";")]
            self.assertIn("Secure", attrs)
            self.assertIn("HttpOnly", attrs)
            self.assertIn("SameSite=Strict", attrs)
            self.assertIn("Max-Age=28800", attrs)
            # The page is served over TLS too, with its headers.
            conn.request("GET", "/ui/")
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.getheader("X-Frame-Options"), "DENY")
        finally:
            conn.close()


if __name__ == "__main__":
    unittest.main()
