"""kyufu-powerfs mounts for the power-cut tests (chaos/powerfs/powerfs.c,
docs/testing.md "Power cut"): mount a backing folder, cut the power through
the control socket (every write not fsynced is dropped, the mount then
answers EIO), unmount, mount again."""
import os
import socket
import subprocess
import sys
import time

import cluster as C


def mounted(path):
    """Whether path is a mount point, from /proc/self/mountinfo (not
    os.path.ismount: after a cut, stat of the mount answers EIO, and on a
    dead daemon ENOTCONN, which ismount takes for "not mounted")."""
    path = os.path.abspath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split(" ")[4].replace("\\040", " ")
            if mp == path:
                return True
    return False


def usable_or_skip(powerfs):
    """Skips the test (exit 77, with the reason) where a FUSE mount cannot
    be made: the program not built (no libfuse3), no fusermount3, no
    /dev/fuse, not root."""
    if not os.path.isfile(powerfs):
        C.skip("kyufu-powerfs not built (%s): install libfuse3-dev and fuse3 "
               "(scripts/setup) and reconfigure" % powerfs)
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        C.skip("/dev/fuse is missing or not usable by this user")
    if os.geteuid() != 0:
        C.skip("not root: the power-cut tests mount FUSE filesystems as root")
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if os.access(os.path.join(d, "fusermount3"), os.X_OK):
            break
    else:
        C.skip("fusermount3 missing (Debian package fuse3)")
    own_mount_namespace()


def own_mount_namespace():
    """Runs the rest of the test in a private mount namespace of its own
    (re-executing it under unshare(1)): its FUSE mounts are then invisible
    to every other process, and gone when the test's processes end, even
    after a crash.  Without it, a mount namespace made by another process
    while a mount exists (another test's `ip netns exec`, a chaos harness's
    unshare) keeps a copy of the mount, the kernel keeps the FUSE
    connection for that copy after our fusermount3 -u, and our daemon never
    exits."""
    if os.environ.get("KYUFU_POWERFS_NS") == str(os.getpid()):
        return
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if os.access(os.path.join(d, "unshare"), os.X_OK):
            break
    else:
        C.skip("unshare (util-linux) missing: the power-cut tests mount "
               "in a mount namespace of their own")
    sys.stdout.flush()
    env = dict(os.environ, KYUFU_POWERFS_NS=str(os.getpid()))
    # exec keeps the PID: the child knows it is the one re-executed.
    os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private",
                           "--", sys.executable] + sys.argv, env)


def parse_report(text):
    """{'files', 'extents', 'bytes', 'per_file': {path: (extents, bytes)}}
    from a control reply."""
    lines = text.splitlines()
    assert lines and lines[-1] == "end", text
    out = {"per_file": {}}
    for kv in lines[0].split():
        k, v = kv.split("=")
        out[k] = int(v)
    for ln in lines[1:-1]:
        _, path, e, b = ln.split(" ")
        out["per_file"][path] = (int(e.split("=")[1]), int(b.split("=")[1]))
    return out


class Mount:
    def __init__(self, powerfs, backing, mountpoint, log, args=()):
        """args: more options for kyufu-powerfs (--held-max BYTES)."""
        self.powerfs = powerfs
        self.args = list(args)
        self.backing = backing
        self.mountpoint = mountpoint
        self.sock = mountpoint.rstrip("/") + ".ctl"
        self.log = log
        self.proc = None
        os.makedirs(backing, exist_ok=True)
        os.makedirs(mountpoint, exist_ok=True)

    def mount(self, timeout=10):
        assert self.proc is None
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [self.powerfs, self.backing, self.mountpoint, "--control",
                 self.sock] + self.args, stdout=log, stderr=log)
        end = time.monotonic() + timeout
        while not mounted(self.mountpoint):
            assert self.proc.poll() is None, (
                "kyufu-powerfs exited %s: %s" % (self.proc.returncode,
                                                 open(self.log).read()))
            assert time.monotonic() < end, "no mount within %ds" % timeout
            time.sleep(0.02)

    def control(self, cmd):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(10)
            s.connect(self.sock)
            s.sendall(cmd.encode() + b"\n")
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        finally:
            s.close()
        return b"".join(chunks).decode()

    def cut(self):
        """Cuts the power; returns what was dropped (parse_report)."""
        return parse_report(self.control("cut"))

    def pending(self):
        return parse_report(self.control("pending"))

    def unmount(self, timeout=15):
        """fusermount3 -u (retried while busy: a killed process's files
        close asynchronously), then the daemon must exit 0."""
        if self.proc is None:
            return
        end = time.monotonic() + timeout
        while True:
            p = subprocess.run(["fusermount3", "-u", self.mountpoint],
                               capture_output=True, text=True)
            if p.returncode == 0:
                break
            assert time.monotonic() < end, "fusermount3 -u: %s" % p.stderr
            time.sleep(0.1)
        rc = self.proc.wait(timeout=timeout)
        self.proc = None
        assert rc == 0, "kyufu-powerfs exited %d: %s" % (
            rc, open(self.log).read())

    def close(self):
        """Best effort, for finally: lazy unmount, kill the daemon."""
        if mounted(self.mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", self.mountpoint],
                           capture_output=True)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
