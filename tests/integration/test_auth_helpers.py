"""The harness's own sign-in helpers (auth.py), without a cluster:

  - totp() gives RFC 6238 appendix B's codes (SHA-1, last 6 digits) and
    agrees with Debian's oathtool on random secrets and steps;
  - Account.next_step() hands out each step once, never one outside the
    node's window (now-1 .. now+1) at the time it is chosen or MARGIN_S
    later, and says None when the window is spent;
  - bootstrap_admin_text() writes the fields docs/identity.md names, the
    hash being PBKDF2-HMAC-SHA256 of the password (RFC 7914's vector for
    the function itself), and write_bootstrap_admin() makes it 0600.

usage: test_auth_helpers.py"""
import base64
import hashlib
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import tempfile

import auth


def rfc6238():
    secret = b"12345678901234567890"
    for t, want in [(59, "94287082"), (1111111109, "07081804"),
                    (1111111111, "14050471"), (1234567890, "89005924"),
                    (2000000000, "69279037"), (20000000000, "65353130")]:
        got = auth.totp(secret, t // 30)
        assert got == want[-6:], (t, got, want)


def oathtool():
    """False when oathtool is missing (scripts/setup installs it): main()
    then reports the test SKIPPED, not passed without this check."""
    exe = shutil.which("oathtool")
    if exe is None:
        print("oathtool comparison not run: oathtool not installed")
        return False
    rnd = random.Random(8)  # seeded: the same secrets every run
    for _ in range(20):
        secret = bytes(rnd.getrandbits(8) for _ in range(20))
        step = rnd.randrange(1, 1 << 40)
        out = subprocess.run(
            [exe, "--totp", "-b", base64.b32encode(secret).decode(),
             "--now", "@%d" % (step * 30)], capture_output=True,
            text=True, check=True).stdout.strip()
        assert auth.totp(secret, step) == out, (secret.hex(), step, out)
        assert auth.b32_secret(base64.b32encode(secret).decode()
                               .rstrip("=").lower()) == secret
    return True


def steps():
    t = [1000 * 30 + 1.0]  # early in step 1000
    a = auth.Account("x", "pw")
    clock = lambda: t[0]  # noqa: E731
    got = [a.next_step(clock) for _ in range(4)]
    assert got == [999, 1000, 1001, None], got
    t[0] = 1001 * 30 + 28.0  # late in step 1001: 1000 would be gone soon
    b = auth.Account("y", "pw")
    got = [b.next_step(clock) for _ in range(3)]
    assert got == [1001, 1002, None], got
    t[0] += 3.0  # step 1002 now: one more usable
    assert b.next_step(clock) == 1003
    assert b.next_step(clock) is None
    # Every step handed out is within +-1 of the step now and MARGIN_S on.
    rnd = random.Random(6238)
    c = auth.Account("z", "pw")
    now = 5000 * 30.0
    for _ in range(500):
        now += rnd.uniform(0, 20)
        s = c.next_step(lambda: now)
        if s is None:
            continue
        for when in (now, now + auth.MARGIN_S):
            assert abs(s - auth.step_at(when)) <= 1, (s, now)


def bootstrap_file():
    # PBKDF2-HMAC-SHA256 itself: RFC 7914 section 11, first vector.
    assert hashlib.pbkdf2_hmac("sha256", b"passwd", b"salt", 1, 64).hex() \
        .startswith("55ac046e56e3089fec1691c22544b605")
    salt = bytes(range(16))
    text = auth.bootstrap_admin_text("admin", "ID administrator",
                                     "Temporary-Pass-1", salt=salt,
                                     iterations=1000)
    kv = dict(line.split(" = ", 1) for line in text.splitlines())
    assert sorted(kv) == ["display_name", "hash", "iterations", "salt",
                          "staff_id"], kv
    assert kv["staff_id"] == "admin" and kv["iterations"] == "1000", kv
    assert kv["salt"] == salt.hex() and len(kv["hash"]) == 64, kv
    assert kv["hash"] == hashlib.pbkdf2_hmac(
        "sha256", b"Temporary-Pass-1", salt, 1000).hex()
    d = tempfile.mkdtemp(prefix="kyufu-auth-")
    try:
        path = os.path.join(d, "bootstrap-admin")
        old = os.umask(0)
        try:
            auth.write_bootstrap_admin(path, text)
        finally:
            os.umask(old)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert open(path).read() == text
    finally:
        shutil.rmtree(d)
    assert auth.bootstrap_admin_text("a", "b", "c").count("\n") == 5
    # The harness's copy of the node's iteration count (api/pwhash.h).
    h = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                          "..", "api", "pwhash.h")).read()
    m = re.search(r"#define KYUFU_PWHASH_ITERATIONS (\d+)u", h)
    assert m and auth.PBKDF2_ITERATIONS == int(m.group(1)), (
        auth.PBKDF2_ITERATIONS, m and m.group(0))
    # ... and of the lowest insecure test cost a node accepts (cluster.py).
    m = re.search(r"#define KYUFU_PWHASH_TEST_ITERATIONS_MIN (\d+)u", h)
    assert m and auth.TEST_ITERATIONS == int(m.group(1)), (
        auth.TEST_ITERATIONS, m and m.group(0))


def main():
    rfc6238()
    compared = oathtool()
    steps()
    bootstrap_file()
    for _ in range(50):
        p = auth.new_password()
        assert len(p) >= 12 and p != auth.new_password(), p
    if not compared:
        print("SKIP: the oathtool comparison did not run")
        sys.exit(77)
    print("auth helpers: ok")


if __name__ == "__main__":
    sys.exit(main())
