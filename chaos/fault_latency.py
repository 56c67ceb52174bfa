#!/usr/bin/python3
"""chaos/fault_latency.py: acknowledged-write latency under each fault kind
of a chaos run, from its history (docs/chaos.md "Faults: delay and loss on
peer links").  The latency of an operation is ok time - invoke time
(retries across nodes included); an operation belongs to a fault kind if it
was invoked while that fault was in effect (fault t .. heal_t), to
"no fault" if it was invoked outside every fault and its recovery (t ..
caught_up_t, else recover_t, else heal_t).

usage: chaos/fault_latency.py RUN_DIR/history.jsonl [...]
Prints one JSON object: {kind: {n, median_ms, p90_ms, max_ms}}.
Exit 2 when a file cannot be read."""
import json
import sys


def events(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def latencies(evs):
    faults = [e for e in evs if e["ev"] == "fault"]
    for f in faults:
        float(f["t"]), float(f["heal_t"]), str(f["kind"])  # or KeyError
    invoked = {}
    out = {}
    for e in evs:
        key = (e.get("client"), e.get("seq"))
        if e["ev"] == "invoke":
            invoked[key] = e["t"]
        elif e["ev"] == "ok" and key in invoked:
            t = invoked[key]
            kind = next((f["kind"] for f in faults
                         if f["t"] <= t <= f["heal_t"]), None)
            if kind is None and any(
                    f["t"] <= t <= (f.get("caught_up_t") or
                                    f.get("recover_t") or f["heal_t"])
                    for f in faults):
                continue  # recovering from a fault: neither
            out.setdefault(kind or "no fault", []).append(e["t"] - t)
    return out


def summary(lat):
    res = {}
    for kind, xs in sorted(lat.items()):
        xs = sorted(xs)
        res[kind] = {"n": len(xs),
                     "median_ms": round(1000 * xs[len(xs) // 2], 1),
                     "p90_ms": round(1000 * xs[int(0.9 * (len(xs) - 1))], 1),
                     "max_ms": round(1000 * xs[-1], 1)}
    return res


def main(argv):
    if not argv:
        print(__doc__.split("usage: ")[1].split("\n")[0], file=sys.stderr)
        return 2
    lat = {}
    for path in argv:
        try:
            got = latencies(events(path))
        except (OSError, ValueError, KeyError, TypeError,
                AttributeError) as e:
            print("chaos/fault_latency.py: %s: not a chaos history (%r)"
                  % (path, e), file=sys.stderr)
            return 2
        for k, xs in got.items():
            lat.setdefault(k, []).extend(xs)
    print(json.dumps(summary(lat), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
