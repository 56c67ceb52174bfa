"""node/systemd/kyufud.service: what an operator relies on from the unit,
checked as far as a machine without systemd as PID 1 allows.

1. `systemd-analyze verify` prints nothing for it (no warning either: a key
   in the wrong section is only a warning), with kyufud installed where
   ExecStart= says (a private mount namespace binds the build's kyufud over
   /usr/local/bin; needs root, else that step is skipped and says so).
2. What `meson install` installs is what the unit names: ExecStart='s
   binary, Documentation='s file.
3. The restart policy matches docs/operations.md "Exit status": every
   status documented as "not restarted" is in RestartPreventExitStatus=,
   every "restarted" one is not; a crash loop ends (StartLimit* in [Unit]);
   a failing ExecStartPre= cannot loop (it is '-' prefixed, and kyufud
   itself exits 2 on the same config); LimitCORE=0.
4. kyufud as the unit runs it (Type=notify, WatchdogSec=): with
   NOTIFY_SOCKET and WATCHDOG_USEC set, READY=1 arrives once the API port
   accepts connections, WATCHDOG=1 keeps coming, a write goes through,
   SIGTERM brings STOPPING=1 and exit 0.  The run happens under strace (in
   the plain build): every system call kyufud made is one
   SystemCallFilter= allows, every socket family one
   RestrictAddressFamilies= allows.

What cannot be tested here: systemd itself applying the sandbox
(ProtectSystem=, PrivateTmp=, ...), the watchdog's kill, the StartLimit
counter.  usage: test_unit.py KYUFUD KYUFUCTL UNIT BUILD_ROOT"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import auth
import ports

KYUFUD, KYUFUCTL, UNIT, BUILD_ROOT = sys.argv[1:5]
SANITIZED = os.environ.get("KYUFU_SANITIZED") == "1"
HERE = os.path.dirname(os.path.abspath(__file__))
DOCS = os.path.join(HERE, "..", "..", "docs")
fails = []


def fail(msg):
    print("FAIL:", msg)
    fails.append(msg)


def parse_unit(path):
    """{section: [(key, value), ...]} in file order."""
    sections, cur = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                cur = sections.setdefault(line.strip("[]"), [])
                continue
            k, _, v = line.partition("=")
            cur.append((k.strip(), v.strip()))
    return sections


def get(unit, section, key):
    return [v for k, v in unit.get(section, []) if k == key]


unit = parse_unit(UNIT)
exec_start = get(unit, "Service", "ExecStart")[0].split()
binary = exec_start[0]

# ------------------------------------------------------------ 1. verify
analyze = shutil.which("systemd-analyze")
if analyze is None:
    print("SKIP part 1: no systemd-analyze")
elif os.geteuid() != 0:
    print("SKIP part 1: not root (cannot bind kyufud over %s)" % binary)
else:
    with tempfile.TemporaryDirectory(prefix="kyufu-unit-bin-") as bindir:
        shutil.copy(KYUFUD, os.path.join(bindir, os.path.basename(binary)))
        r = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             'mount --bind "$1" "$2" && exec "$3" verify "$4"', "sh",
             bindir, os.path.dirname(binary), analyze, os.path.abspath(UNIT)],
            capture_output=True, text=True, timeout=60)
        out = (r.stdout + r.stderr).strip()
        if r.returncode != 0 or out:
            fail("systemd-analyze verify: exit %d, output: %s" % (r.returncode, out))
        else:
            print("ok: systemd-analyze verify: no output")

# ------------------------------------------------------------ 2. installed
r = subprocess.run(["meson", "introspect", "--installed", BUILD_ROOT],
                   capture_output=True, text=True, timeout=60)
installed_map = json.loads(r.stdout) if r.returncode == 0 else {}


def is_installed(dest):
    """dest is a file meson install puts there (install_subdir: a folder
    whose source holds the file)."""
    for src, d in installed_map.items():
        if d == dest and os.path.isfile(src):
            return True
        if dest.startswith(d + "/") and os.path.isdir(src) and \
                os.path.isfile(os.path.join(src, dest[len(d) + 1:])):
            return True
    return False


prefix_r = subprocess.run(["meson", "introspect", "--buildoptions", BUILD_ROOT],
                          capture_output=True, text=True, timeout=60)
prefix = next(o["value"] for o in json.loads(prefix_r.stdout) if o["name"] == "prefix")
if prefix != "/usr/local":
    print("SKIP part 2: the build's prefix is %s, the unit's paths are /usr/local's" % prefix)
else:
    n_fails = len(fails)
    if binary not in installed_map.values():
        fail("ExecStart= %s is not installed by meson install" % binary)
    docs = get(unit, "Unit", "Documentation")
    if not docs:
        fail("no Documentation=")
    for d in " ".join(docs).split():
        if not d.startswith("file://") or not is_installed(d[len("file://"):]):
            fail("Documentation= %s is not a file meson install installs" % d)
    unit_dest = prefix + "/lib/systemd/system/kyufud.service"
    if not is_installed(unit_dest):
        fail("the unit is not installed to %s" % unit_dest)
    if len(fails) == n_fails:
        print("ok: meson install installs %s, the unit and its Documentation=" % binary)

# ------------------------------------------------------------ 3. policy
if get(unit, "Service", "Restart") != ["on-failure"]:
    fail("Restart= is not on-failure")
prevent = set(" ".join(get(unit, "Service", "RestartPreventExitStatus")).split())
with open(os.path.join(DOCS, "operations.md")) as f:
    ops = f.read()
table = ops.split("## Exit status", 1)[1].split("\n## ", 1)[0]
rows = re.findall(r"^\| (\d+) \|.*\| ([^|]*) \|$", table, re.M)
if len(rows) < 5:
    fail("docs/operations.md 'Exit status' table not found")
for status, restart in rows:
    documented_prevented = restart.strip().startswith("not restarted")
    if documented_prevented and status != "0" and status not in prevent:
        fail("exit %s is documented as not restarted but is not in "
             "RestartPreventExitStatus=" % status)
    if not documented_prevented and status in prevent:
        fail("exit %s is documented as restarted but is prevented" % status)
for key in ("StartLimitIntervalSec", "StartLimitBurst"):
    if not get(unit, "Unit", key):
        fail("%s is not in [Unit] (a crash loop would not end)" % key)
for pre in get(unit, "Service", "ExecStartPre"):
    if not pre.startswith("-"):
        fail("ExecStartPre=%s: a failure of it is not covered by "
             "RestartPreventExitStatus= and would be retried" % pre)
if get(unit, "Service", "LimitCORE") != ["0"]:
    fail("LimitCORE= is not 0 (a core dump holds personal data)")
if get(unit, "Service", "Type") != ["notify"]:
    fail("Type= is not notify")
print("ok: restart policy against docs/operations.md: prevented %s" % sorted(prevent))

# ------------------------------------------------------------ 4. run
if not get(unit, "Service", "WatchdogSec"):
    fail("no WatchdogSec=: the pings below would go nowhere")
tmp = tempfile.mkdtemp(prefix="kyufu-unit-")
proc = None
done = threading.Event()
try:
    raft_port, api_port = ports.free_ports(2)
    subprocess.run([KYUFUCTL, "cluster", "init", "--dir", tmp + "/c", "--nodes", "1",
                    "--raft-port-base", str(raft_port), "--api-port-base",
                    str(api_port)], check=True, capture_output=True, timeout=60,
                   env=dict(os.environ, KYUFU_CA_PASSPHRASE="unit test CA passphrase"))
    conf = tmp + "/c/node1/kyufud.conf"
    # Snapshots every few entries, so the traced run takes some.
    with open(conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text.replace("[raft]\n", "[raft]\nsnapshot_threshold = 4\nsnapshot_trailing = 2\n"))
    ctl_conf = tmp + "/c/kyufuctl.conf"
    # The first ID administrator: a bootstrap file whose temporary
    # password this test knows (init printed its own one-time password).
    admin_password = auth.stand_in_bootstrap([tmp + "/c/node1/data"])
    notify_path = tmp + "/notify"
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(notify_path)
    env = dict(os.environ, NOTIFY_SOCKET=notify_path,
               WATCHDOG_USEC=str(400 * 1000))  # pings every 200 ms
    env.pop("WATCHDOG_PID", None)
    strace = shutil.which("strace")
    trace = tmp + "/strace.txt"
    cmd = [KYUFUD, "--config", conf]
    if strace and not SANITIZED:
        cmd = [strace, "-f", "-qq", "-o", trace] + cmd
    else:
        print("SKIP the system-call check: %s" %
              ("no strace" if not strace else "sanitizer build"))
    # The unit's LimitCORE=0, UMask=0077 and NoNewPrivileges=yes.
    pre = "ulimit -c 0; umask 0077; exec setpriv --no-new-privs \"$@\""
    log = open(tmp + "/kyufud.log", "w")
    proc = subprocess.Popen(["sh", "-c", pre, "sh"] + cmd, env=env,
                            stdout=log, stderr=subprocess.STDOUT)

    def kyufud_pid():
        """Under strace, kyufud is strace's child: signals go to it."""
        if cmd[0] == KYUFUD:
            return proc.pid
        for _ in range(100):
            try:
                with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
                    kids = f.read().split()
                if kids:
                    return int(kids[0])
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("kyufud did not start under strace")

    # Read the notify socket all the time, as systemd does: sd_notify
    # blocks once a datagram socket's queue is full (net.unix.max_dgram_qlen).
    msgs = []
    cond = threading.Condition()

    def reader():
        nsock.settimeout(0.1)
        while not done.is_set():
            try:
                m = nsock.recv(4096).decode()
            except socket.timeout:
                continue
            if "READY=1" in m:  # the API port must accept at this moment
                try:
                    socket.create_connection(("127.0.0.1", api_port), timeout=2).close()
                    ready_connect.append("ok")
                except OSError as e:
                    ready_connect.append(str(e))
            with cond:
                msgs.append((time.monotonic(), m))
                cond.notify_all()
    ready_connect = []
    reader_thread = threading.Thread(target=reader, daemon=True)
    reader_thread.start()

    def recv_until(pred, timeout):
        """The first message from now on that pred accepts, or None."""
        deadline = time.monotonic() + timeout
        with cond:
            seen = len(msgs)
            while True:
                for _, m in msgs[seen:]:
                    if pred(m):
                        return m
                seen = len(msgs)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                cond.wait(left)

    ready = None
    with cond:  # READY=1 may have come before we look
        ready = next((m for _, m in msgs if "READY=1" in m), None)
    ready = ready or recv_until(lambda m: "READY=1" in m, 30)
    if ready is None:
        fail("no READY=1 within 30 s: %s" % msgs)
    elif ready_connect != ["ok"]:
        fail("READY=1 sent but the API port did not accept: %s" % ready_connect)
    else:
        print("ok: READY=1 (%r) when the API port accepts" % ready)
    t0 = time.monotonic()
    recv_until(lambda m: False, 1.0)
    with cond:
        pings = [m for t, m in msgs if t >= t0 and m == "WATCHDOG=1"]
    if len(pings) < 3:
        fail("%d WATCHDOG=1 in 1 s with WATCHDOG_USEC=400000 (want >= 3)" % len(pings))
    else:
        print("ok: %d WATCHDOG=1 in 1 s" % len(pings))
    # Signed in as the administrator (sign-in's own writes included).
    client_cfg = dict(line.split(" = ", 1) for line in open(ctl_conf).read().splitlines()
                      if " = " in line)
    import cluster  # noqa: E402 (grpcio stubs, only now needed)
    cl = auth.Client(cluster.stubs(tmp), "127.0.0.1:%d" % api_port, client_cfg["ca"],
                     client_cfg["cert"], client_cfg["key"])
    _, admin_token = cl.first_sign_in("admin", admin_password, wait_s=30)
    cl.close()
    ctl_env = dict(os.environ, KYUFU_TOKEN=admin_token)
    for k in range(10):  # writes enough for two snapshots
        who = "clerk%d" % k
        r = subprocess.run([KYUFUCTL, "--config", ctl_conf, "--deadline-ms", "30000",
                            "--as", "admin", "staff",
                            "create", "--staff-id", who, "--display-name", who, "--roles",
                            "clerk"],
                           capture_output=True, text=True, timeout=60, env=ctl_env)
        if r.returncode != 0:
            fail("write %d refused: %s %s" % (k, r.stdout, r.stderr))
            break
    pid = kyufud_pid()
    os.kill(pid, signal.SIGHUP)  # certificate reload: its system calls too
    time.sleep(0.3)
    os.kill(pid, signal.SIGTERM)
    stopping = recv_until(lambda m: "STOPPING=1" in m, 10)
    with cond:  # or it came before we looked
        stopping = stopping or next((m for _, m in msgs if "STOPPING=1" in m), None)
    if stopping is None:
        fail("no STOPPING=1 after SIGTERM")
    rc = proc.wait(timeout=30)
    proc = None
    if rc != 0:
        fail("exit %d after SIGTERM" % rc)
    else:
        print("ok: STOPPING=1, exit 0")

    if os.path.exists(trace):
        # The allowed set: @system-service minus the ~ groups, expanded.
        groups, cur = {}, None
        out = subprocess.run([analyze or "systemd-analyze", "syscall-filter"],
                             capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            if not line.startswith(" "):
                cur = groups.setdefault(s, [])
            elif cur is not None:
                cur.append(s)

        def expand(name, seen=None):
            seen = seen if seen is not None else set()
            if not name.startswith("@"):
                return {name}
            if name in seen:
                return set()
            seen.add(name)
            return set().union(*[expand(x, seen) for x in groups.get(name, [])])
        allowed, denied = set(), set()
        for v in get(unit, "Service", "SystemCallFilter"):
            deny = v.startswith("~")
            names = set().union(*[expand(x) for x in v.lstrip("~").split()])
            (denied if deny else allowed).update(names)
        allowed -= denied
        used, families = set(), set()
        with open(trace) as f:
            for line in f:
                m = re.match(r"^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]", line)
                if m:
                    used.add(m.group(1))
                m = re.search(r"\bsocket\((AF_[A-Z0-9]+)", line)
                if m:
                    families.add(m.group(1))
        outside = sorted(used - allowed)
        if outside:
            fail("system calls outside SystemCallFilter=: %s" % outside)
        else:
            print("ok: %d distinct system calls, all in SystemCallFilter=" % len(used))
        fams = set(" ".join(get(unit, "Service", "RestrictAddressFamilies")).split())
        if families - fams:
            fail("socket families outside RestrictAddressFamilies=: %s" %
                 sorted(families - fams))
        else:
            print("ok: socket families %s" % sorted(families))
finally:
    done.set()
    if proc is not None:
        proc.kill()
        proc.wait()
    if fails:
        try:
            with open(tmp + "/kyufud.log") as f:
                print(f.read()[-3000:])
        except OSError:
            pass
    shutil.rmtree(tmp, ignore_errors=True)

if fails:
    print("%d failure(s)" % len(fails))
    sys.exit(1)
print("all ok")
