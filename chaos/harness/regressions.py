"""chaos/regressions.txt: seeds that once failed a chaos run, replayed by
`chaos/soak KYUFUD --regressions` (docs/chaos.md "Regression seeds").

One entry a line:

    SEED [--seconds S] [--settle] [--cover] [--kinds K,K]
         [--snapshot-threshold N]  # what it caught

SEED is the plan's seed (0..2^63-1); the options are chaos/run's, and
--kinds pins the kinds the seed was drawn from (the plan of a seed depends
on the kind set, and new kinds change it); the comment after `#` is
required: what the seed caught and where it is written up.  Blank lines
and lines starting with `#` are comments.  parse() refuses the whole file
on the first bad line (ValueError naming FILE:LINE), so a typo never
replays half a file."""
import shlex

from harness import plan

SEED_MAX = 2 ** 63
SECONDS = (1.0, 24 * 3600.0)
FLAGS = ("--settle", "--cover")
VALUED = ("--seconds", "--kinds", "--snapshot-threshold")
SNAPSHOT = (4, 1048576)


def _entry(text):
    """(seed, [chaos/run options]) of one entry's text (no comment)."""
    words = shlex.split(text)
    try:
        seed = int(words[0], 10)
    except ValueError:
        raise ValueError("the seed %r is not a decimal number" % words[0])
    if not 0 <= seed < SEED_MAX:
        raise ValueError("the seed %d is not within 0..2^63-1" % seed)
    opts, seen, k = [], set(), 1
    while k < len(words):
        w = words[k]
        if w in seen:
            raise ValueError("%s given twice" % w)
        seen.add(w)
        if w in FLAGS:
            opts.append(w)
            k += 1
            continue
        if w not in VALUED:
            raise ValueError("unknown option %r (known: %s)"
                             % (w, " ".join(FLAGS + VALUED)))
        if k + 1 >= len(words):
            raise ValueError("%s needs a value" % w)
        v = words[k + 1]
        if w == "--seconds":
            try:
                s = float(v)
            except ValueError:
                raise ValueError("--seconds %r is not a number" % v)
            if not SECONDS[0] <= s <= SECONDS[1]:
                raise ValueError("--seconds must be within 1..86400")
        elif w == "--snapshot-threshold":
            if not v.isdigit() or not SNAPSHOT[0] <= int(v) <= SNAPSHOT[1]:
                raise ValueError("--snapshot-threshold must be within "
                                 "4..1048576")
        else:
            kinds = v.split(",")
            bad = sorted(set(kinds) - set(plan.KINDS))
            if bad or len(set(kinds)) != len(kinds):
                raise ValueError("--kinds: unknown or repeated kind(s) %s "
                                 "(known: %s)" % (",".join(bad) or v,
                                                  ",".join(sorted(
                                                      plan.KINDS))))
        opts += [w, v]
        k += 2
    return seed, opts


def parse(path):
    """[{line, seed, args, what}] of the file at path; ValueError
    ("PATH:LINE: why") on the first bad line, OSError if unreadable."""
    out = []
    with open(path, encoding="utf-8") as f:
        try:
            lines = f.read().splitlines()
        except UnicodeDecodeError:
            raise ValueError("%s: not UTF-8 text" % path)
    for n, line in enumerate(lines, 1):
        body = line.strip()
        if not body or body.startswith("#"):
            continue
        text, sep, what = body.partition("#")
        try:
            if not sep or not what.strip():
                raise ValueError("no `# what it caught` comment")
            seed, args = _entry(text)
        except ValueError as e:
            raise ValueError("%s:%d: %s" % (path, n, e))
        out.append({"line": n, "seed": seed, "args": args,
                    "what": what.strip()})
    if not out:
        raise ValueError("%s: no entries" % path)
    return out
