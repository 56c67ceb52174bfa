"""kyufu-powerfs mounts for the power-cut tests (chaos/powerfs/powerfs.c,
docs/testing.md "Power cut"): mount a backing folder, cut the power through
the control socket (every write not fsynced is dropped, the mount then
answers EIO), unmount, mount again."""
import os
import socket
import subprocess
import time

import cluster as C


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
            return
    C.skip("fusermount3 missing (Debian package fuse3)")


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
    def __init__(self, powerfs, backing, mountpoint, log):
        self.powerfs = powerfs
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
                 self.sock], stdout=log, stderr=log)
        end = time.monotonic() + timeout
        while not os.path.ismount(self.mountpoint):
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
            if p.returncode == 0 or not os.path.ismount(self.mountpoint):
                break
            assert time.monotonic() < end, "fusermount3 -u: %s" % p.stderr
            time.sleep(0.1)
        rc = self.proc.wait(timeout=timeout)
        self.proc = None
        assert rc == 0, "kyufu-powerfs exited %d: %s" % (
            rc, open(self.log).read())

    def close(self):
        """Best effort, for finally: lazy unmount, kill the daemon."""
        if os.path.ismount(self.mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", self.mountpoint],
                           capture_output=True)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
