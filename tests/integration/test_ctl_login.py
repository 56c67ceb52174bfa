"""kyufuctl signs in like a person at a counter, on a three-node cluster
(issue 8; docs/kyufuctl.md "Signing in"):

  - the first ID administrator (bootstrap-admin file, temporary password)
    runs `kyufuctl login --password-file --new-password-file`: a setup-only
    session, the password changed, the next step named; `totp enroll
    --json` shows the secret once, `totp confirm` with oathtool's code, and
    `login --totp` with the next code gives a full session; the token file
    is 0600 and holds only the token, which no output shows;
  - `whoami` names the account and its roles;
  - a second clerk's first sign-in on a terminal (a pty): prompts, no echo
    of either password, the secret and its QR code shown, codes asked;
  - `staff create` prints the clerk's one-time temporary password; the
    clerk goes through the same first sign-in in their own --token-file and
    writes (household register) in their session, the header naming no
    actor; `--as admin` in the clerk's session is refused, and so is an ID
    administrator's command (PERMISSION_DENIED);
  - KYUFU_TOKEN wins over the token file; a token file others may read is
    refused (exit 2) before any call;
  - `logout` closes the session on the cluster (the old token, given as
    KYUFU_TOKEN, is now "not signed in") and deletes the file;
  - no password or token appears in any node's log.

usage: test_ctl_login.py KYUFUD KYUFUCTL"""
import json
import os
import re
import select
import stat
import subprocess
import sys
import time

import auth as A
import cluster as C

TEMP = "Temporary-Bootstrap-Pw-7731"
ADMIN_PW = "Velvet-Harbor-Quartz-5521"
CLERK_PW = "Copper-Meadow-Lantern-9043"


def write_secret(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, (text + "\n").encode())
    os.close(fd)


def bootstrap_admin(c):
    """The file kyufuctl cluster init writes into each node's data folder
    (auth.bootstrap_admin_text), for a temporary password this test knows:
    100 000 PBKDF2 iterations, the lowest a node accepts."""
    text = A.bootstrap_admin_text(C.ADMIN, "ID administrator", TEMP,
                                  iterations=100000)
    for i in range(1, c.n + 1):
        c.write_bootstrap(i, text)


def oathtool(secret, later=False):
    cmd = ["oathtool", "--totp", "-b"]
    if later:
        # Codes are single-use: the sign-in after a confirmation takes the
        # next step's code (the node accepts +-1 step).
        cmd += ["-N", "now + 30 seconds"]
    return subprocess.check_output(cmd + [secret], text=True).strip()


class Ctl:
    def __init__(self, kyufuctl, conf, xdg):
        self.kyufuctl = kyufuctl
        self.conf = conf
        self.env = dict(os.environ, XDG_CONFIG_HOME=xdg)
        self.env.pop("KYUFU_TOKEN", None)
        self.printed = []

    def __call__(self, *args, rc=0, env=None):
        r = subprocess.run([self.kyufuctl, "--config", self.conf] + list(args),
                           env=dict(self.env, **(env or {})),
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60)
        self.printed.append(r.stdout + r.stderr)
        if r.returncode != rc:
            raise AssertionError("kyufuctl %s: exit %d (want %d)\n%s%s"
                                 % (" ".join(args), r.returncode, rc,
                                    r.stdout, r.stderr))
        return r


def first_sign_in(k, c, who, temp_file, new_file, token_file):
    """login (temporary -> new password), totp enroll, confirm, login."""
    tf = ["--token-file", token_file]
    deadline = time.time() + 20
    while True:  # the first leader applies BootstrapAdmin after its election
        try:
            r = k(*tf, "login", "--staff-id", who, "--password-file", temp_file,
                  "--new-password-file", new_file)
            break
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(0.3)
    assert "setup only" in r.stdout and "kyufuctl totp enroll" in r.stdout, r.stdout
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    secret = json.loads(k(*tf, "--json", "totp", "enroll").stdout)["secret_base32"]
    k(*tf, "totp", "confirm", "--code", oathtool(secret))
    r = k(*tf, "login", "--staff-id", who, "--password-file", new_file,
          "--totp", oathtool(secret, later=True))
    assert "signed in as %s" % who in r.stdout and "setup" not in r.stdout, r.stdout
    token = open(token_file).read()
    assert len(token) == 65 and token.endswith("\n"), "token file holds the token only"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    return token.strip()


def interactive_login(kyufuctl, conf, xdg, token_file, who, temp, new_pw):
    """`kyufuctl login` on a terminal (a pty), as a person: it asks the staff
    id, the password (no echo), a code (none yet), the new password twice
    (no echo), shows the TOTP secret and its QR code, asks a code to
    confirm, then the next code to sign in."""
    pid, fd = os.forkpty()
    if pid == 0:
        env = dict(os.environ, XDG_CONFIG_HOME=xdg)
        env.pop("KYUFU_TOKEN", None)
        os.execve(kyufuctl, [kyufuctl, "--config", conf, "--token-file", token_file,
                             "login"], env)
    seen = b""

    def expect(pattern, timeout=30):
        nonlocal seen
        end = time.time() + timeout
        while not re.search(pattern, seen):
            left = end - time.time()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError("no %r in %r" % (pattern, seen[-2000:]))
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                raise AssertionError("ended before %r: %r" % (pattern, seen[-2000:]))
            seen += chunk

    def say(text):
        os.write(fd, text.encode() + b"\r")

    try:
        expect(rb"Staff ID: ")
        say(who)
        expect(rb"Password: ")
        say(temp)
        expect(rb"TOTP code[^:]*: ")
        say("")
        expect(rb"New password[^:]*: ")
        say(new_pw)
        expect(rb"The same again: ")
        say(new_pw)
        expect(rb"Code shown by the app: ")
        m = re.search(rb"secret: ([A-Z2-7]+)", seen)
        assert m, seen[-2000:]
        secret = m.group(1).decode()
        # The QR code: half blocks and a quiet zone row of full blocks.
        assert "\u2580".encode() in seen and ("\u2588" * 20).encode() in seen
        say(oathtool(secret))
        expect(rb"NEXT code[^:]*: ")
        say(oathtool(secret, later=True))
        expect(rb"signed in as %s \(clerk\)" % who.encode())
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    finally:
        os.close(fd)
    # Passwords typed with echo off never reached the screen.
    assert temp.encode() not in seen and new_pw.encode() not in seen, "a password echoed"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600


def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    with C.Cluster(kyufud) as c:
        bootstrap_admin(c)
        c.start_all()
        conf = os.path.join(c.dir, "kyufuctl.conf")
        with open(conf, "w") as f:
            f.write("[client]\nendpoints = %s\nca = %s\ncert = %s\nkey = %s\n"
                    % (",".join(c.api[i] for i in range(1, c.n + 1)), c.ca,
                       c.client_cert, c.client_key))
        xdg = os.path.join(c.dir, "xdg")
        k = Ctl(kyufuctl, conf, xdg)
        files = {}
        for name, text in (("temp", TEMP), ("admin", ADMIN_PW), ("clerk", CLERK_PW)):
            files[name] = os.path.join(c.dir, name + ".pw")
            write_secret(files[name], text)

        # The administrator, in the default token file.
        admin_file = os.path.join(xdg, "kyufu", "token")
        admin_token = first_sign_in(k, c, "admin", files["temp"], files["admin"],
                                    admin_file)
        assert stat.S_IMODE(os.stat(os.path.dirname(admin_file)).st_mode) == 0o700
        who = json.loads(k("--json", "whoami").stdout)
        assert who["staff_id"] == "admin" and who["roles"] == ["id_admin"], who
        assert not who.get("setup_only"), who

        # A clerk: created with a one-time temporary password (the session
        # is the actor: no --as) ...
        r = k("staff", "create", "--staff-id", "clerk1",
              "--display-name", "Sato", "--roles", "clerk")
        lines = r.stdout.splitlines()
        at = [i for i, l in enumerate(lines) if "temporary password" in l]
        assert at, r.stdout
        clerk_temp = lines[at[0] + 1].strip()
        clerk_temp_file = os.path.join(c.dir, "clerk-temp.pw")
        write_secret(clerk_temp_file, clerk_temp)
        # ... who signs in on their own and writes in their own session.
        clerk_file = os.path.join(c.dir, "clerk.token")
        clerk_token = first_sign_in(k, c, "clerk1", clerk_temp_file, files["clerk"],
                                    clerk_file)
        assert clerk_token != admin_token
        r = k("--token-file", clerk_file, "household", "register",
              "--household-no", "H-1", "--head-name", "Kyufu Taro",
              "--address", "1 Chuo", "--bank-code", "0001", "--branch-code", "001",
              "--account-type", "ordinary", "--account-no", "1000001",
              "--holder-kana", "ｷｭｳﾌ ﾀﾛｳ")
        assert r.stdout.startswith("ok: household/H-1"), r.stdout
        # --as only asserts: naming anyone but the session's account is refused.
        r = k("--token-file", clerk_file, "--as", "admin", "household", "register",
              "--household-no", "H-2", "--head-name", "X", "--address", "2 Chuo",
              "--bank-code", "0001", "--branch-code", "001", "--account-type",
              "ordinary", "--account-no", "1000002", "--holder-kana", "ｴｯｸｽ", rc=1)
        # The clerk's session cannot do an ID administrator's work.
        r = k("--token-file", clerk_file, "staff", "unlock", "admin", rc=1)
        assert "PERMISSION_DENIED" in r.stderr, r.stderr

        # A second clerk signs in for the first time on a terminal.
        r = k("staff", "create", "--staff-id", "clerk2", "--display-name", "Suzuki",
              "--roles", "clerk")
        lines = r.stdout.splitlines()
        clerk2_temp = lines[[i for i, l in enumerate(lines)
                             if "temporary password" in l][0] + 1].strip()
        clerk2_file = os.path.join(c.dir, "clerk2.token")
        interactive_login(kyufuctl, conf, xdg, clerk2_file, "clerk2", clerk2_temp,
                          "Saffron-Glacier-Pebble-3318")
        who = json.loads(k("--token-file", clerk2_file, "--json", "whoami").stdout)
        assert who["staff_id"] == "clerk2" and not who.get("setup_only"), who

        # KYUFU_TOKEN wins over the token file.
        r = k("--token-file", clerk_file, "--json", "whoami",
              env={"KYUFU_TOKEN": admin_token})
        assert json.loads(r.stdout)["staff_id"] == "admin", r.stdout
        # A token file others may read: refused before any call.
        os.chmod(clerk_file, 0o644)
        r = k("--token-file", clerk_file, "whoami", rc=2)
        assert "mode 0644" in r.stderr, r.stderr
        os.chmod(clerk_file, 0o600)

        # logout: the session ends on the cluster, the file goes.
        r = k("--token-file", clerk_file, "logout")
        assert "signed out" in r.stdout, r.stdout
        assert not os.path.exists(clerk_file)
        # The leader closed it; a follower may answer from its state for
        # the replication lag (docs/identity.md): refused within 5 s.
        deadline = time.time() + 5
        while True:
            try:
                r = k("whoami", rc=1, env={"KYUFU_TOKEN": clerk_token})
                break
            except AssertionError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        assert "not signed in or session expired: kyufuctl login" in r.stderr, r.stderr
        r = k("--token-file", clerk_file, "whoami", rc=1)
        assert "kyufuctl login" in r.stderr, r.stderr

        # No secret in anything printed or logged.
        logs = c.logs()
        for secret in (TEMP, ADMIN_PW, CLERK_PW, clerk_temp, admin_token, clerk_token):
            assert secret not in logs, "a secret in a node log"
        for secret in (ADMIN_PW, CLERK_PW, admin_token, clerk_token):
            assert not any(secret in p for p in k.printed), "a secret printed"
        print("ok")


if __name__ == "__main__":
    main()
