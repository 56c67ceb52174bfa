"""kyufu-powerfs itself (chaos/powerfs/powerfs.c): what survives its power
cut and what does not, the way LMDB and raft_uv use files (pwrite read back
through a read-only shared mapping, a shared writable mapping, fallocate,
rename, a directory fsync, libraft's O_TMPFILE and linkat), EIO after the cut, a clean unmount writing back
what it holds, the bound on what it holds (--held-max), and its hostile
inputs.

usage: test_powerfs.py KYUFU_POWERFS"""
import ctypes
import errno
import mmap
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import powerfs as P


def expect_eio(fn, *a):
    try:
        fn(*a)
    except OSError as e:
        assert e.errno == errno.EIO, e
        return
    raise AssertionError("no EIO after the cut: %s%r" % (fn.__name__, a))


def write(path, data, sync):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        if sync:
            os.fdatasync(fd)
    finally:
        os.close(fd)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def link_fd(fd, path):
    """libraft's way to name an O_TMPFILE file (UvFsFinalizeTempFile):
    linkat(AT_FDCWD, "/proc/self/fd/N", AT_FDCWD, path, AT_SYMLINK_FOLLOW)
    (os.link calls link(2), which would link the /proc symlink itself)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.linkat(-100, b"/proc/self/fd/%d" % fd, -100, os.fsencode(path),
                   0x400) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)


def tmpfiles(mnt):
    """libraft writes snapshots with O_TMPFILE, then links them
    (chaos/powerfs/powerfs_loop.c): synced and linked survives the cut,
    linked but unsynced keeps its name and loses its bytes, one closed
    without a link leaves nothing; none is listed before its link.  Returns
    the descriptor of one still open and unlinked at the cut."""
    os.mkdir(mnt + "/snap")
    fd = os.open(mnt + "/snap", os.O_TMPFILE | os.O_WRONLY, 0o600)
    os.write(fd, b"snapshot-1")
    os.fsync(fd)
    assert os.listdir(mnt + "/snap") == []
    link_fd(fd, mnt + "/snap/snapshot-1")
    os.close(fd)
    assert read(mnt + "/snap/snapshot-1") == b"snapshot-1"
    assert os.stat(mnt + "/snap/snapshot-1").st_nlink == 1
    fd = os.open(mnt + "/snap", os.O_TMPFILE | os.O_WRONLY, 0o600)
    os.write(fd, b"never linked")
    os.close(fd)
    fd = os.open(mnt + "/snap", os.O_TMPFILE | os.O_WRONLY, 0o600)
    os.write(fd, b"unsynced-2")
    link_fd(fd, mnt + "/snap/snapshot-2")
    os.close(fd)
    assert sorted(os.listdir(mnt + "/snap")) == ["snapshot-1", "snapshot-2"]
    fd = os.open(mnt + "/snap", os.O_TMPFILE | os.O_WRONLY, 0o600)
    os.write(fd, b"open at the cut")
    return fd


def hostile(powerfs, d):
    """Bad command lines and control commands: a clear error, no mount."""
    for args in ([], [d], [d, d], [d, d, "--control"],
                 [d, d, "--ctl", d + "/s"], ["", d, "--control", d + "/s"],
                 [d, d, "--control", d + "/s", "--held-max"],
                 [d, d, "--control", d + "/s", "--held", "1"],
                 [d, d, "--control", d + "/s", "--held-max", "0"],
                 [d, d, "--control", d + "/s", "--held-max", "-1"],
                 [d, d, "--control", d + "/s", "--held-max", "1k"],
                 [d, d, "--control", d + "/s", "--held-max",
                  "99999999999999999999"]):
        p = subprocess.run([powerfs] + args, capture_output=True, text=True,
                           timeout=10)
        assert p.returncode == 2 and "usage: kyufu-powerfs" in p.stderr, (
            args, p)
    p = subprocess.run([powerfs, d + "/none", d, "--control", d + "/s"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 1 and "backing directory" in p.stderr, p
    p = subprocess.run([powerfs, d, d, "--control", d + "/" + "s" * 200],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 1 and "control socket path longer" in p.stderr, p
    assert not P.mounted(d)


def held_max(powerfs, d):
    """--held-max bounds the bytes held unsynced, over all files: a write
    past it fails with ENOSPC and holds nothing; a sync frees room."""
    m = P.Mount(powerfs, os.path.join(d, "disk-max"),
                os.path.join(d, "mnt-max"), os.path.join(d, "max.log"),
                args=["--held-max", "10000"])
    try:
        m.mount()
        a = os.open(m.mountpoint + "/a", os.O_CREAT | os.O_RDWR, 0o600)
        b = os.open(m.mountpoint + "/b", os.O_CREAT | os.O_RDWR, 0o600)
        assert os.pwrite(a, b"a" * 6000, 0) == 6000
        assert os.pwrite(b, b"b" * 4000, 0) == 4000  # exactly the bound
        try:
            os.pwrite(b, b"c", 4000)
            raise AssertionError("a write past --held-max was held")
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
        assert m.pending()["bytes"] == 10000
        assert "--held-max 10000" in open(m.log).read()
        os.fsync(a)
        assert os.pwrite(b, b"c" * 6000, 4000) == 6000
        pend = m.pending()["per_file"]
        assert {p: b for p, (_, b) in pend.items()} == {"/b": 10000}, pend
        os.close(a)
        os.close(b)
        m.unmount()
    finally:
        m.close()


def main():
    powerfs = sys.argv[1]
    P.usable_or_skip(powerfs)
    d = tempfile.mkdtemp(prefix="kyufu-powerfs-", dir="/tmp")
    m = P.Mount(powerfs, os.path.join(d, "disk"), os.path.join(d, "mnt"),
                os.path.join(d, "powerfs.log"))
    try:
        hostile(powerfs, d)
        held_max(powerfs, d)
        m.mount()
        mnt = m.mountpoint
        write(mnt + "/synced", b"durable", sync=True)
        write(mnt + "/unsynced", b"volatile", sync=False)
        # Read before the cut: the held bytes, overlaid on the backing file.
        assert read(mnt + "/unsynced") == b"volatile"
        assert os.path.getsize(mnt + "/unsynced") == 8
        assert os.path.getsize(m.backing + "/unsynced") == 0
        # Synced, then overwritten in part without a sync.
        write(mnt + "/mixed", b"A" * 8192, sync=True)
        fd = os.open(mnt + "/mixed", os.O_RDWR)
        os.pwrite(fd, b"B" * 100, 4000)
        os.close(fd)
        assert read(mnt + "/mixed") == b"A" * 4000 + b"B" * 100 + b"A" * 4092
        # LMDB's data file: pwrite through one descriptor, read through a
        # read-only shared mapping of another (the page cache stays
        # coherent with the writes FUSE holds).
        wfd = os.open(mnt + "/data.mdb", os.O_CREAT | os.O_RDWR, 0o600)
        os.pwrite(wfd, b"\0" * 16384, 0)
        os.fdatasync(wfd)
        rfd = os.open(mnt + "/data.mdb", os.O_RDONLY)
        mp = mmap.mmap(rfd, 16384, mmap.MAP_SHARED, mmap.PROT_READ)
        assert mp[4096:4100] == b"\0" * 4
        os.pwrite(wfd, b"meta", 4096)
        assert mp[4096:4100] == b"meta"
        os.fdatasync(wfd)
        os.pwrite(wfd, b"lost", 8192)
        assert mp[8192:8196] == b"lost"
        # LMDB's lock file: a shared writable mapping (msync makes it
        # durable here like on a disk; it needs no durability).
        lfd = os.open(mnt + "/lock.mdb", os.O_CREAT | os.O_RDWR, 0o600)
        os.ftruncate(lfd, 8192)
        lm = mmap.mmap(lfd, 8192, mmap.MAP_SHARED)
        lm[0:5] = b"hello"
        assert read(mnt + "/lock.mdb")[:5] == b"hello"
        lm.flush()
        # raft_uv's segments: fallocate, write + fdatasync, rename, a
        # directory fsync; a file created, written and synced.
        os.mkdir(mnt + "/raft")
        fd = os.open(mnt + "/raft/open-1", os.O_CREAT | os.O_RDWR, 0o600)
        os.posix_fallocate(fd, 0, 65536)
        os.pwrite(fd, b"entry-1", 0)
        os.fdatasync(fd)
        os.pwrite(fd, b"entry-2", 7)
        os.close(fd)
        os.rename(mnt + "/raft/open-1", mnt + "/raft/1-2")
        dfd = os.open(mnt + "/raft", os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)
        assert read(mnt + "/raft/1-2")[:14] == b"entry-1entry-2"
        # An unlinked file's held data is not reported (nothing to lose),
        # nor that of a file a rename replaced.
        write(mnt + "/gone", b"x" * 1000, sync=False)
        os.unlink(mnt + "/gone")
        write(mnt + "/replaced", b"y" * 1000, sync=False)
        write(mnt + "/tmp-new", b"new", sync=True)
        os.rename(mnt + "/tmp-new", mnt + "/replaced")
        assert read(mnt + "/replaced") == b"new"
        tmpfd = tmpfiles(mnt)
        # In the backing folder: the two named, and the open one's hidden
        # name (the one closed without a link left nothing).
        back = sorted(os.listdir(m.backing + "/snap"))
        assert back[1:] == ["snapshot-1", "snapshot-2"] and len(back) == 3 \
            and back[0].startswith(".powerfs-tmpfile-"), back

        # A bad control command changes nothing: the held bytes below are
        # still all there (a command taken for "cut" would drop them).
        for bad in (b"format\n", b"cutx\n", b"cut now\n", b"CUT\n",
                    b"x" * 200 + b"\n", b"\n"):
            s = socket.socket(socket.AF_UNIX)
            s.connect(m.sock)
            s.sendall(bad)
            assert s.recv(4096).startswith(b"error: unknown command"), bad
            s.close()
        # Held bytes per file (the kernel may split a write that crosses a
        # page into two extents).
        want = {"/unsynced": 8, "/mixed": 100, "/data.mdb": 4, "/raft/1-2": 7,
                "/snap/snapshot-2": 10}
        pend = m.pending()
        held = {p: b for p, (_, b) in pend["per_file"].items()}
        tmp = [p for p in held if p.startswith("/snap/.powerfs-tmpfile-")]
        assert len(tmp) == 1 and held.pop(tmp[0]) == 15, pend
        assert held == want, pend
        cut = m.cut()
        assert cut == pend, (cut, pend)
        assert cut["bytes"] == 144 and cut["files"] == 6, cut
        assert "power cut: dropped 144 bytes in %d extents of 6 files" % (
            cut["extents"]) in open(m.log).read()
        # After the cut: EIO for every operation, as on a dead machine.
        expect_eio(read, mnt + "/synced")
        expect_eio(os.stat, mnt + "/synced")
        expect_eio(os.listdir, mnt)
        expect_eio(write, mnt + "/new", b"x", True)
        expect_eio(os.fdatasync, wfd)
        assert m.cut()["bytes"] == 0  # a second cut drops nothing more
        for fd in (wfd, rfd, lfd, tmpfd):
            os.close(fd)
        del mp, lm  # unmapped: the mount is no longer busy
        m.unmount()
        # The tmpfile open at the cut left its hidden name in the backing
        # folder; the next mount removes it, as a real file system frees
        # an unnamed inode when it recovers.
        assert len(os.listdir(m.backing + "/snap")) == 3
        m.mount()
        assert sorted(os.listdir(m.backing + "/snap")) == [
            "snapshot-1", "snapshot-2"], os.listdir(m.backing + "/snap")
        assert read(mnt + "/synced") == b"durable"
        assert read(mnt + "/unsynced") == b""  # created: metadata at once
        assert read(mnt + "/mixed") == b"A" * 8192
        data = read(mnt + "/data.mdb")
        assert len(data) == 16384 and data[4096:4100] == b"meta" \
            and data[8192:8196] == b"\0" * 4
        assert read(mnt + "/lock.mdb")[:5] == b"hello"
        seg = read(mnt + "/raft/1-2")
        assert len(seg) == 65536 and seg[:14] == b"entry-1" + b"\0" * 7, seg[:14]
        assert not os.path.exists(mnt + "/gone")
        assert read(mnt + "/replaced") == b"new"
        assert read(mnt + "/snap/snapshot-1") == b"snapshot-1"
        assert read(mnt + "/snap/snapshot-2") == b""
        assert sorted(os.listdir(mnt + "/snap")) == ["snapshot-1", "snapshot-2"]
        assert m.pending()["bytes"] == 0
        # An unmount without a cut is a clean shutdown: held data written.
        write(mnt + "/clean", b"written back", sync=False)
        assert read(m.backing + "/clean") == b""
        m.unmount()
        assert read(m.backing + "/clean") == b"written back"
    finally:
        m.close()
        shutil.rmtree(d, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
