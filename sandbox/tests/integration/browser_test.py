#!/usr/bin/env python3
"""End-to-end test of the hcpg-sandbox console in headless Chromium, driven through
chromedriver's W3C WebDriver HTTP API with the standard library only (urllib).

    browser_test.py SANDBOX_URL CHROMEDRIVER_URL SCREENSHOT.png

Opens /demo/ui, clicks the golden-flow button, waits for the visible result, checks
that the second load came from the cache, that the reload shows the value written by
SQL (not the old one), that the counters moved, then saves a screenshot."""
import base64
import json
import sys
import time
import urllib.error
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f6b7c0dfc0c"


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read() or b"{}").get("value")
    except urllib.error.HTTPError as e:
        raise SystemExit("webdriver %s %s: HTTP %d %s" % (method, path, e.code, e.read()[:500]))


class Browser:
    def __init__(self, driver):
        self.driver = driver
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1100"]}}}}
        self.sid = call(driver, "POST", "/session", caps)["sessionId"]

    def s(self, method, path, body=None):
        return call(self.driver, method, "/session/%s%s" % (self.sid, path), body)

    def find(self, css):
        found = self.s("POST", "/elements", {"using": "css selector", "value": css})
        if not found:
            return None
        ref = found[0]
        return ref.get(ELEMENT) or next(iter(ref.values()))  # W3C key, or the only one

    def text(self, css):
        # One script, no element reference: the polled panels re-render their tables, so a
        # reference found a moment before can be stale by the time its text is asked for.
        return self.s("POST", "/execute/sync", {
            "script": "const e = document.querySelector(arguments[0]);"
                      "return e === null ? null : e.innerText;",
            "args": [css]})

    def wait_text(self, css, pred, timeout=30.0):
        end = time.time() + timeout
        last = None
        while time.time() < end:
            last = self.text(css)
            if last is not None and pred(last):
                return last
            time.sleep(0.1)
        raise SystemExit("timeout waiting for %s (last text: %r)" % (css, last))

    def quit(self):
        try:
            self.s("DELETE", "")
        except SystemExit:
            pass


def check(cond, msg):
    if not cond:
        raise SystemExit("FAIL: " + msg)
    print("ok   " + msg)


def main():
    sandbox, driver, shot = sys.argv[1], sys.argv[2], sys.argv[3]
    b = Browser(driver)
    try:
        b.s("POST", "/url", {"url": sandbox + "/demo/ui"})
        b.wait_text("#profile", lambda t: t.startswith("profile: ") and t != "profile: ?")
        profile = b.text("#profile")
        print("console loaded,", profile)
        b.wait_text("#ready", lambda t: t == "ready")
        b.s("POST", "/element/%s/click" % b.find("#btn-golden"), {})
        status = b.wait_text("#result-status", lambda t: t.startswith("OK") or t.startswith("FAILED"))
        check(status == "OK", "the golden flow reports OK (got %r)" % status)
        row = 'tr[data-step="%s"] td.%s'
        first = b.text(row % ("load", "value"))
        check(b.text(row % ("load", "source")) == "database", "step 1 loads from the database")
        check(b.text(row % ("load again", "source")) == "cache", "step 2 is served by the cache")
        check(b.text(row % ("load again", "value")) == first, "step 2 shows the same value")
        written = b.text(row % ("write", "value"))
        check(written and written != first, "the write sets a new value (%r -> %r)" % (first, written))
        check(b.text(row % ("invalidation", "source")) == "bus", "the invalidation arrives over the bus")
        if "postgres" in profile:
            check('"origin":"database"' in b.text(row % ("invalidation", "details")),
                  "it comes from the database trigger")
        check(b.text(row % ("reload", "source")) == "database", "the reload goes to the database")
        check(b.text(row % ("reload", "value")) == written,
              "the reload shows the new value %r" % written)
        # the polled panels caught up: counters and the event timeline
        b.wait_text("#counters-a td.hits", lambda t: int(t) >= 1)
        b.wait_text("#events", lambda t: "invalidate_tag" in t and "user:42" in t)
        print("ok   counters and event timeline updated")
        time.sleep(1.2)  # one more poll so the chart has two samples
        png = base64.b64decode(b.s("GET", "/screenshot"))
        check(png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000,
              "screenshot is a PNG of %d bytes" % len(png))
        with open(shot, "wb") as f:
            f.write(png)
        print("screenshot:", shot)
        # the other panels: a benchmark compare and the scenario editor
        for label in ("first", "second"):
            b.s("POST", "/execute/sync", {"script": "document.getElementById('b-req').value = 2000;"
                                          "document.getElementById('b-label').value = arguments[0];",
                                          "args": [label]})
            b.s("POST", "/element/%s/click" % b.find("#b-run"), {})
            b.wait_text("#b-out", lambda t: t.startswith("HTTP 200") and label in t)
        b.wait_text("#b-runs", lambda t: "second" in t)
        b.s("POST", "/element/%s/click" % b.find("#b-compare"), {})
        verdict = b.wait_text("#b-out", lambda t: t.startswith("verdict: "))
        check(verdict.split("\n")[0] in ("verdict: b faster", "verdict: b slower",
                                          "verdict: no clear difference"),
              "the benchmark compare shows a verdict (%s)" % verdict.split("\n")[0])
        b.wait_text("#sc-pick", lambda t: "scenarios/golden.json" in t)
        b.s("POST", "/element/%s/click" % b.find("#sc-run"), {})
        sc = b.wait_text("#sc-status", lambda t: t.startswith("PASSED") or t.startswith("FAILED"))
        check(sc.startswith("PASSED") and " 0 failed" in sc, "the golden scenario passes from the editor (%s)" % sc)
    finally:
        b.quit()


if __name__ == "__main__":
    main()
