"""The SLA report page in a real browser (headless Chromium): the page a
kyufuctl sla report --html writes from the saved fixture report renders,
its figures are in the rendered DOM (availability and target, the RTO
percentiles, one row per failover, the charts as inline SVG, writes lost,
backups, open incidents), a hostile string from the report is text and not
markup, and a screenshot is kept in the build folder as a test artefact
(sla-report.png, with the page sla-report.html).

Exit 77 (skipped) only when no chromium is installed.
usage: test_sla_render.py KYUFUCTL FIXTURE.json OUT_DIR"""
import html.parser
import os
import shutil
import struct
import subprocess
import sys
import tempfile

WIDTH, HEIGHT = 1100, 2400


class Dom(html.parser.HTMLParser):
    """Text by element id, counts of classes and tags, as rendered."""

    def __init__(self):
        super().__init__()
        self.by_id = {}
        self.classes = {}
        self.tags = {}
        self.stack = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for cl in (a.get("class") or "").split():
            self.classes[cl] = self.classes.get(cl, 0) + 1
        self.stack.append(a.get("id"))
        if a.get("id"):
            self.by_id.setdefault(a["id"], "")

    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()

    def handle_data(self, data):
        for i in self.stack:
            if i:
                self.by_id[i] = self.by_id.get(i, "") + data


def chromium(browser, profile, *args):
    env = dict(os.environ)
    env["HOME"] = profile
    p = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", "--disable-extensions",
                        "--disable-dev-shm-usage",
                        "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        "--no-default-browser-check", "--disable-breakpad",
                        "--password-store=basic",
                        "--user-data-dir=" + profile]
                       + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=90, env=env)
    return p


def main():
    kyufuctl, fixture, out_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium is not installed (scripts/setup installs it): skipped")
        sys.exit(77)
    os.makedirs(out_dir, exist_ok=True)
    page = os.path.join(out_dir, "sla-report.html")
    shot = os.path.join(out_dir, "sla-report.png")
    for f in (page, shot):
        if os.path.exists(f):
            os.remove(f)
    p = subprocess.run([kyufuctl, "sla", "report", "--input", fixture,
                        "--html", page], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    profile = tempfile.mkdtemp(prefix="kyufu-chromium-", dir="/tmp")
    try:
        r = chromium(browser, profile, "--dump-dom", "file://" + page)
        assert r.returncode == 0 and "<html" in r.stdout, (r.returncode,
                                                           r.stderr[-2000:])
        dom = Dom()
        dom.feed(r.stdout)
        ids = dom.by_id
        want = {
            "availability": "99.9998%",
            "verdict": "target met",
            "target": "99.9000%",
            "rto-p50": "900",
            "rto-p90": "4800",
            "rto-max": "4800",
            "writes-lost": "0",
            "open-incidents": "1",
        }
        for k, v in want.items():
            assert ids.get(k, "").strip() == v, (k, ids.get(k))
        assert "no backups configured" in ids.get("backups", ""), ids
        assert "6000 ms used of 2678400 ms" in ids.get("budget", ""), ids
        assert dom.classes.get("failover") == 4, dom.classes
        assert dom.classes.get("incident") == 2, dom.classes
        assert dom.classes.get("rto-bar") == 12, dom.classes
        assert dom.classes.get("failover-mark") == 4, dom.classes
        assert dom.classes.get("unavailable") == 2, dom.classes
        assert "timeline" in ids and "rto-chart" in ids, ids.keys()
        assert dom.tags.get("svg") == 2, dom.tags
        # The hostile summary is text in the DOM, never an element.
        assert dom.tags.get("script") is None, dom.tags
        assert "<script>alert('x')</script>" in ids.get("incidents", ""), ids
        print("rendered DOM: figures present")

        r = chromium(browser, profile, "--screenshot=" + shot,
                     "--window-size=%d,%d" % (WIDTH, HEIGHT), "file://" + page)
        assert r.returncode == 0, r.stderr[-2000:]
        with open(shot, "rb") as f:
            head = f.read(24)
        assert head[:8] == b"\x89PNG\r\n\x1a\n", head
        w, h = struct.unpack(">II", head[16:24])
        assert (w, h) == (WIDTH, HEIGHT), (w, h)
        size = os.path.getsize(shot)
        assert size > 20000, size  # a blank page is a few kilobytes
        print("screenshot kept: %s (%d bytes)" % (shot, size))
    finally:
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
