#!/usr/bin/env python3
"""Mutation check of kyufu's guards (docs/testing.md, "Mutation check").

Each mutation in mutations.py is (file, exact original text, mutated text,
description): a comparison boundary flipped, an off-by-one, a negated or
removed check.  For each one this script

  1. copies the working tree (tracked files) into a scratch directory
     (default /tmp/kyufu-mutate-$USER; kept between runs so the plain build
     there is incremental) -- the worktree itself is never modified;
  2. replaces the original text (which must occur exactly once) by the
     mutated text in the scratch copy;
  3. rebuilds (ninja, plain build, -Werror: a mutation that does not
     compile is reported as such, not as killed);
  4. runs only the suites of the mutated folder (FOLDER_SUITES), each with
     a timeout;
  5. records killed (some test failed) or survived, restores the file.

With --in-place the worktree itself is mutated and its build directory
(--build, default build) reused: no second full build.  The mutated files
must then have no uncommitted changes (checked first), each is written
back after its run, and at the end any of them that still differs from
git is restored with `git checkout` (so an interrupted run leaves nothing
behind after a rerun or a checkout).  Do not edit sources meanwhile.

Usage:
  chaos/mutate/run.py [--only SUBSTRING]... [--scratch DIR | --in-place
                      [--build DIR]] [--jobs N] [--out FILE.tsv]

Prints one line per mutation and a summary per folder; --out writes the
table as tab-separated values.  Exit status 0 always (survivors are data,
not an error); 2 when a mutation's original text is not found exactly once
(the list is out of date).
"""
import argparse
import json
import os
import signal
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mutations import MUTATIONS  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

# Which tests run for a mutation in a folder.  Not integration (slow, and
# it runs the same code through a cluster of processes); sim runs 20 seeds.
FOLDER_SUITES = {
    "storage": [["meson", "test", "-C", "{b}", "--no-rebuild", "--suite",
                 "storage", "--num-processes", "{j}"]],
    "raft-glue": [["meson", "test", "-C", "{b}", "--no-rebuild", "--suite",
                   "raft", "--num-processes", "{j}"],
                  ["{b}/tests/sim/kyufu-sim", "--seeds", "20"]],
    "api": [["meson", "test", "-C", "{b}", "--no-rebuild", "--suite", "api",
             "--num-processes", "{j}"]],
}
TIMEOUT_S = 300


def sync_tree(scratch):
    """Copy tracked files of the worktree into scratch (mtime kept, only
    files that differ), so ninja rebuilds only what changed."""
    files = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in files:
        if not rel:
            continue
        src = os.path.join(ROOT, rel)
        dst = os.path.join(scratch, rel)
        if not os.path.isfile(src):
            continue
        if os.path.exists(dst):
            with open(src, "rb") as a, open(dst, "rb") as b:
                if a.read() == b.read():
                    continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)


def suite_targets(build):
    """Per folder, the ninja targets its suites need: their test binaries
    (so a mutation relinks only those, not the daemon and tools)."""
    tests = json.loads(subprocess.run(
        ["meson", "introspect", "--tests", build], capture_output=True,
        check=True).stdout)
    out = {}
    for folder, cmds in FOLDER_SUITES.items():
        suites = {c[c.index("--suite") + 1] for c in cmds if "--suite" in c}
        t = set()
        for test in tests:
            if suites & {x.split(":")[-1] for x in test["suite"]}:
                exe = test["cmd"][0]
                if exe.startswith(build + "/"):
                    t.add(os.path.relpath(exe, build))
        for c in cmds:
            if c[0].startswith("{b}/"):
                t.add(c[0][len("{b}/"):])
        out[folder] = sorted(t)
    return out


def run(cmd, cwd, timeout):
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True,
                           timeout=timeout)
        return p.returncode, (p.stdout + p.stderr).decode(errors="replace")
    except subprocess.TimeoutExpired:
        return "timeout", ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", action="append", default=[],
                    help="run the mutations whose file or description "
                         "contains this (repeatable: any of them)")
    ap.add_argument("--scratch",
                    default="/tmp/kyufu-mutate-" + os.environ.get("USER", "u"))
    ap.add_argument("--in-place", action="store_true")
    ap.add_argument("--build", default="build")
    ap.add_argument("--jobs", default="2")
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    files = sorted({m[0] for m in MUTATIONS})
    if args.in_place:
        scratch = ROOT
        build = os.path.join(ROOT, args.build)
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain",
                                "--"] + files, capture_output=True,
                               check=True).stdout.decode().strip()
        if dirty:
            sys.exit("--in-place: uncommitted changes in\n" + dirty)
    else:
        scratch = args.scratch
        build = os.path.join(scratch, "build-mut")
        os.makedirs(scratch, exist_ok=True)
        sync_tree(scratch)
    if not os.path.exists(os.path.join(build, "build.ninja")):
        subprocess.run(["meson", "setup", build], cwd=scratch, check=True,
                       capture_output=True)
    rc, out = run(["ninja", "-C", build, "-j", args.jobs], scratch, 3600)
    if rc != 0:
        print(out[-3000:])
        sys.exit("baseline build failed")
    # Baseline: every suite passes unmutated, or results mean nothing.
    for folder, cmds in FOLDER_SUITES.items():
        for cmd in cmds:
            c = [x.format(b=build, j=args.jobs) for x in cmd]
            rc, out = run(c, scratch, TIMEOUT_S)
            if rc != 0:
                print(out[-3000:])
                sys.exit("baseline %s failed: %s" % (folder, " ".join(c)))

    targets = suite_targets(build)
    # A SIGTERM still runs the `finally` that restores the mutated file.
    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)

    rows = []
    bad_list = False
    for (path, orig, mut, desc) in MUTATIONS:
        if args.only and not any(o in path + " " + desc for o in args.only):
            continue
        folder = path.split("/")[0]
        target = os.path.join(scratch, path)
        with open(target) as f:
            text = f.read()
        if text.count(orig) != 1:
            print("LIST  %s: original found %d times: %s" %
                  (path, text.count(orig), desc))
            bad_list = True
            continue
        t0 = time.time()
        result = "survived"
        killer = ""
        try:
            with open(target, "w") as f:
                f.write(text.replace(orig, mut))
            rc, out = run(["ninja", "-C", build, "-j", args.jobs] +
                          targets[folder], scratch, 1800)
            if rc != 0:
                result = "nocompile"
            else:
                for cmd in FOLDER_SUITES[folder]:
                    c = [x.format(b=build, j=args.jobs) for x in cmd]
                    rc, out = run(c, scratch, TIMEOUT_S)
                    if rc != 0:
                        result = "killed"
                        killer = "timeout" if rc == "timeout" else \
                            first_failure(out, c)
                        break
        finally:
            with open(target, "w") as f:
                f.write(text)
            os.utime(target, None)
        dt = time.time() - t0
        rows.append((folder, path, desc, result, killer, dt))
        print("%-9s %-28s %-60s %s %s (%.0fs)" %
              (result, path, desc[:60], killer, "", dt), flush=True)
    if args.in_place:
        dirty = subprocess.run(["git", "-C", ROOT, "diff", "--name-only",
                                "--"] + files, capture_output=True,
                               check=True).stdout.decode().split()
        if dirty:
            subprocess.run(["git", "-C", ROOT, "checkout", "--"] + dirty,
                           check=True)
    # Leave the build matching the tree again.
    run(["ninja", "-C", build, "-j", args.jobs], scratch, 1800)

    print()
    for folder in FOLDER_SUITES:
        fr = [r for r in rows if r[0] == folder and r[3] != "nocompile"]
        if not fr:
            continue
        surv = sum(1 for r in fr if r[3] == "survived")
        print("%-9s %2d mutations, %2d killed, %2d survived (%.0f%%)" %
              (folder, len(fr), len(fr) - surv, surv, 100.0 * surv / len(fr)))
    if args.out:
        with open(args.out, "w") as f:
            for r in rows:
                f.write("%s\t%s\t%s\t%s\t%s\t%.0f\n" % r)
    sys.exit(2 if bad_list else 0)


def first_failure(out, cmd):
    """Name of the first failing test in meson's output, or the command."""
    for line in out.splitlines():
        if " FAIL " in line or " TIMEOUT " in line:
            parts = line.split("/")
            if len(parts) >= 2:
                return parts[-1].split()[0]
    return os.path.basename(cmd[0])


if __name__ == "__main__":
    main()
