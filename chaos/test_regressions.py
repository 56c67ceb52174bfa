#!/usr/bin/python3
"""chaos/regressions.txt and `chaos/soak --regressions` (docs/chaos.md
"Regression seeds"), without a cluster (< 1 s):

  1. The repository's chaos/regressions.txt parses: every entry has a seed,
     options chaos/run takes, known kinds, and a comment saying what it
     caught; and each entry's plan is what chaos/run replays (the same
     seed and kinds give the same plan).
  2. Hostile files are refused whole with FILE:LINE and the reason: a
     missing comment, a bad seed, an unknown or repeated option, a value
     out of bounds, an unknown kind, an unclosed quote, bytes that are not
     UTF-8, an empty file.
  3. `chaos/soak --regressions BAD` exits 2 with that message and runs
     nothing (no run folder appears under --out)."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import plan, regressions  # noqa: E402

GOOD = "7 --seconds 30 --settle --kinds kill-leader,pause-random  # found X\n"
BAD = [
    ("7 --seconds 30\n", "no `# what it caught` comment"),
    ("7 --seconds 30  #   \n", "no `# what it caught` comment"),
    ("seven  # x\n", "not a decimal number"),
    ("-1  # x\n", "not within 0..2^63-1"),
    ("9223372036854775808  # x\n", "not within 0..2^63-1"),
    ("7 --seconds 0  # x\n", "--seconds must be within 1..86400"),
    ("7 --seconds nan  # x\n", "--seconds must be within 1..86400"),
    ("7 --seconds abc  # x\n", "is not a number"),
    ("7 --seconds  # x\n", "--seconds needs a value"),
    ("7 --settle --settle  # x\n", "--settle given twice"),
    ("7 --out /etc  # x\n", "unknown option '--out'"),
    ("7 --kinds kill-leader,reboot  # x\n", "unknown or repeated kind"),
    ("7 --kinds kill-leader,kill-leader  # x\n", "unknown or repeated kind"),
    ("7 --kinds  # x\n", "--kinds needs a value"),
    ("7 'unclosed  # x\n", "No closing quotation"),
    ("7 --snapshot-threshold 3  # x\n", "within 4..1048576"),
    ("7 --snapshot-threshold 1e3  # x\n", "within 4..1048576"),
]


def write(d, name, data):
    path = os.path.join(d, name)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return path


def main():
    # 1. the repository's file
    entries = regressions.parse(os.path.join(HERE, "regressions.txt"))
    assert entries, entries
    for e in entries:
        assert e["what"], e
        args = e["args"]
        kinds = args[args.index("--kinds") + 1].split(",") \
            if "--kinds" in args else None
        p1 = plan.make(e["seed"], 20, cover="--cover" in args, kinds=kinds)
        p2 = plan.make(e["seed"], 20, cover="--cover" in args, kinds=kinds)
        assert p1 == p2
        assert set(f["kind"] for f in p1) <= set(kinds or plan.KINDS)
    print("regressions.txt: %d entries parse" % len(entries))
    with tempfile.TemporaryDirectory(prefix="kyufu-regr-") as d:
        good = write(d, "good.txt", "# header\n\n" + GOOD)
        got = regressions.parse(good)
        assert got == [{"line": 3, "seed": 7, "what": "found X",
                        "args": ["--seconds", "30", "--settle", "--kinds",
                                 "kill-leader,pause-random"]}], got
        # 2. hostile files: the bad line after a good one, so the whole
        # file is refused, not half replayed
        for text, why in BAD + [(b"7  # \xff\xfe\n", "not UTF-8 text")]:
            body = GOOD.encode() + (text if isinstance(text, bytes)
                                    else text.encode())
            path = write(d, "bad.txt", body)
            try:
                regressions.parse(path)
            except ValueError as e:
                assert why in str(e), (text, str(e))
                if why != "not UTF-8 text":
                    assert str(e).startswith(path + ":2: "), str(e)
            else:
                raise AssertionError("accepted: %r" % text)
        for text, why in (("", "no entries"), ("# only\n\n", "no entries")):
            try:
                regressions.parse(write(d, "empty.txt", text))
                raise AssertionError("accepted an empty file")
            except ValueError as e:
                assert why in str(e), str(e)
        print("hostile regression files: %d refused" % (len(BAD) + 3))
        # 3. chaos/soak refuses them before any run
        out = os.path.join(d, "out")
        for bad in (path, os.path.join(d, "missing.txt")):
            p = subprocess.run([sys.executable, os.path.join(HERE, "soak"),
                                sys.executable, "--regressions", bad,
                                "--out", out], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               timeout=30)
            assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
            assert "--regressions: " in p.stderr, p.stderr
            assert not os.path.exists(out), os.listdir(out)
        p = subprocess.run([sys.executable, os.path.join(HERE, "soak"),
                            sys.executable, "--regressions", good,
                            "--minutes", "1", "--out", out],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        assert p.returncode == 2 and "no --minutes" in p.stderr, p.stderr
        assert not os.path.exists(out)
        print("chaos/soak --regressions: bad files refused, nothing run")


if __name__ == "__main__":
    main()
