"""Network UPS Tools for a test: Debian's upsd and dummy-ups driver (package
nut-server), run from /lib/nut/ in a temporary folder, one dummy UPS per
name (mode dummy-once: the .dev file is read once, so a value set later
stays), switched live with upsrw (an admin user in upsd.users).

Debian's /sbin/upsd is a wrapper that refuses MODE=none, so the binaries
under /lib/nut/ run directly, with NUT_CONFPATH / NUT_STATEPATH /
NUT_ALTPIDPATH pointing at the folder.  Started as root they drop to user
nut: the state folder is nut:nut 0770, the configs root:nut 0640, and the
folder itself is traversable (0711).  Processes are ours, tracked by PID,
stopped in close().  FSD stays latched until driver and upsd restart; the
tests use "OB LB" for low battery."""
import grp
import os
import pwd
import shutil
import subprocess
import tempfile
import time

UPSD = "/lib/nut/upsd"
DRIVER = "/lib/nut/dummy-ups"
UPSRW = shutil.which("upsrw") or "/bin/upsrw"
UPSC = shutil.which("upsc") or "/bin/upsc"


def available():
    """None when NUT can run here, else why not."""
    for p in (UPSD, DRIVER, UPSRW, UPSC):
        if not os.access(p, os.X_OK):
            return "%s missing (Debian packages nut-server, nut-client)" % p
    if os.getuid() == 0:
        try:
            pwd.getpwnam("nut")
            grp.getgrnam("nut")
        except KeyError:
            return "user or group nut missing"
    return None


class Nut:
    def __init__(self, port, upses):
        """upses: {name: initial ups.status}."""
        self.port = port
        self.upses = dict(upses)  # the last status set, per UPS
        self.dir = tempfile.mkdtemp(prefix="kyufu-nut-", dir="/tmp")
        os.chmod(self.dir, 0o711)
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.state)
        self.root = os.getuid() == 0
        if self.root:
            os.chown(self.state, pwd.getpwnam("nut").pw_uid,
                     grp.getgrnam("nut").gr_gid)
            os.chmod(self.state, 0o770)
        files = {
            "nut.conf": "MODE=standalone\n",
            "upsd.conf": "LISTEN 127.0.0.1 %d\nMAXAGE 15\n" % port,
            "upsd.users": "[admin]\n  password = kyufu-test\n"
                          "  actions = SET FSD\n  instcmds = ALL\n",
            "ups.conf": "".join(
                "[%s]\n  driver = dummy-ups\n  port = %s.dev\n"
                "  mode = dummy-once\n"
                "  desc = \"kyufu test UPS\"\n" % (n, n) for n in upses),
        }
        for name, text in files.items():
            self._write(name, text)
        self.env = dict(os.environ, NUT_CONFPATH=self.dir,
                        NUT_STATEPATH=self.state, NUT_ALTPIDPATH=self.state)
        self.drivers = {}
        self.upsd = None

    def _write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        if self.root:
            os.chown(path, 0, grp.getgrnam("nut").gr_gid)
        os.chmod(path, 0o640)

    def _spawn(self, args, log):
        out = open(os.path.join(self.dir, log), "a")
        try:
            return subprocess.Popen(args, stdout=out, stderr=out,
                                    env=self.env)
        finally:
            out.close()

    def start(self):
        """Drivers (each starting from its UPS's last status), then upsd."""
        for n, st in self.upses.items():
            self._write(n + ".dev", "ups.status: %s\nbattery.charge: 100\n"
                        "battery.runtime: 1800\n" % st)
        for n in self.upses:
            self.drivers[n] = self._spawn([DRIVER, "-a", n, "-F"],
                                          "driver-%s.log" % n)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            socks = [f for f in os.listdir(self.state)
                     if f.startswith("dummy-ups-")]
            if len(socks) == len(self.upses):
                break
            time.sleep(0.05)
        self.start_upsd()

    def start_upsd(self):
        assert self.upsd is None
        self.upsd = self._spawn([UPSD, "-F"], "upsd.log")
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if all(self.status(n) is not None for n in self.upses):
                return
            time.sleep(0.05)
        raise AssertionError("upsd did not serve the UPSes:\n" + self.logs())

    def stop_upsd(self):
        self.upsd.terminate()
        self.upsd.wait(10)
        self.upsd = None

    def restart(self):
        """Drivers and upsd anew (dummy-ups 2.8.0 can die on a select() of
        a closed fd once upsd went away, so its drivers restart too)."""
        self.stop_all()
        self.start()

    def name(self, ups):
        return "%s@127.0.0.1:%d" % (ups, self.port)

    def status(self, ups):
        p = subprocess.run([UPSC, self.name(ups), "ups.status"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True, env=self.env)
        return p.stdout.strip() if p.returncode == 0 else None

    def set(self, ups, status):
        """Switch the dummy UPS's ups.status live (upsrw -s)."""
        subprocess.run([UPSRW, "-s", "ups.status=" + status, "-u", "admin",
                        "-p", "kyufu-test", self.name(ups)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       env=self.env)
        self.upses[ups] = status
        # The driver applies it within its poll; upsd then serves it.
        end = time.monotonic() + 5
        while self.status(ups) != status and time.monotonic() < end:
            time.sleep(0.01)
        assert self.status(ups) == status, (ups, self.status(ups), status)

    def logs(self):
        out = []
        for f in sorted(os.listdir(self.dir)):
            if f.endswith(".log"):
                with open(os.path.join(self.dir, f)) as fh:
                    out.append("--- %s\n%s" % (f, fh.read()[-2000:]))
        return "\n".join(out)

    def close(self):
        self.stop_all()
        shutil.rmtree(self.dir, ignore_errors=True)

    def stop_all(self):
        procs = list(self.drivers.values())
        if self.upsd is not None:
            procs.append(self.upsd)
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.drivers = {}
        self.upsd = None
