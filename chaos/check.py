#!/usr/bin/python3
"""The chaos checker (docs/chaos.md "Checker"): a run's history against its
final state.  Offline: `chaos/check.py RUN_DIR` reads RUN_DIR/history.jsonl
and RUN_DIR/final.json (written by chaos/run's final read phase), prints
the summary and writes RUN_DIR/summary.json; exit 0 with no violation, 1
with any, 2 on unreadable input."""
import collections
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import history as H  # noqa: E402
import linear  # noqa: E402

PREFIX = "chaos-"
HOUSEHOLD = re.compile(r"^C\d+-\d+$")
LIVE = ("APP_RECEIVED", "APP_APPROVED", "APP_PAID")
# Kinds of violation (docs/chaos.md "Checker"): an acknowledged write lost,
# a write applied twice, a definite failure with an effect, an effect no
# client invoked, a broken invariant, replicas that differ, a household
# whose history has no linearization.
KINDS = ("lost", "duplicate", "effect", "phantom", "invariant", "replicas",
         "linear")


class Checker:
    def __init__(self, events, final):
        self.events = events
        self.final = final
        self.violations = []
        self.seed = next((e.get("seed") for e in events
                          if e["ev"] == "meta"), None)
        self.ops = collections.OrderedDict()
        for e in events:
            if e["ev"] == "invoke":
                self.ops[(e["client"], e["seq"])] = {"invoke": e,
                                                     "end": None}
            elif e["ev"] in ("ok", "fail", "unknown"):
                self.ops[(e["client"], e["seq"])]["end"] = e

    # --------------------------------------------------------- helpers
    def bad(self, what, *keys, kind):
        """A violation of kind (KINDS) with the history excerpt of the
        operations keys."""
        assert kind in KINDS, kind
        excerpt = []
        for k in keys:
            op = self.ops.get(k)
            if op is not None:
                excerpt += [op["invoke"]] + ([op["end"]] if op["end"]
                                             else [])
        self.violations.append({"what": what, "kind": kind,
                                "seed": self.seed, "history": excerpt})

    def outcome(self, k):
        end = self.ops[k]["end"]
        return end["ev"] if end is not None else "unknown"

    def by_op(self, name):
        return [(k, o) for k, o in self.ops.items()
                if o["invoke"]["op"] == name]

    # ---------------------------------------------------- exactly once
    def check_audit_keys(self):
        recs = collections.defaultdict(list)
        for r in self.final["audit"]:
            if r["client_id"].startswith(PREFIX):
                recs[(r["client_id"], r["client_seq"])].append(r)
        for k, o in self.ops.items():
            if o["invoke"]["op"] in linear.READS:
                continue  # no key, no audit record of ours
            got = recs.get(k, [])
            oks = [r for r in got if r["outcome"] == 0]
            out = self.outcome(k)
            if any(r["command"] != o["invoke"]["op"] for r in got):
                self.bad("audit record of %s/%d names another command: %s"
                         % (k + ([r["command"] for r in got],)), k,
                         kind="phantom")
            if out == "ok":
                obj = o["end"]["result"]["object"]
                if len(got) != 1 or len(oks) != 1:
                    self.bad("acknowledged %s/%d: %d audit records (%d OK),"
                             " not exactly one" % (k + (len(got), len(oks))),
                             k, kind="lost" if not oks else "duplicate")
                elif obj and oks[0]["object"] != obj:
                    self.bad("acknowledged %s/%d: audit object %s, the "
                             "answer said %s" % (k + (oks[0]["object"], obj)),
                             k, kind="lost")
            elif out == "fail" and (oks or len(got) > 1):
                self.bad("definite failure %s/%d applied: %s" % (k + (got,)),
                         k, kind="effect")
            elif len(got) > 1:
                self.bad("unknown %s/%d applied %d times" % (k + (len(got),)),
                         k, kind="duplicate")
            if out == "ok" and o["invoke"]["args"].get("refusal_expected"):
                self.bad("%s/%d: %s that the ledger must refuse was "
                         "acknowledged" % (k + (o["invoke"]["op"],)), k,
                         kind="effect")
        for k in recs:
            if k not in self.ops:
                self.bad("audit record of %s/%d, never invoked: %s"
                         % (k + (recs[k],)), kind="phantom")

    # ----------------------------------------------------------- state
    def check_state(self):
        apps = {a["id"]: a for a in self.final["applications"]
                if HOUSEHOLD.match(a["household_no"])}
        homes = {h for h in self.final["households"] if HOUSEHOLD.match(h)}
        # households
        made = {}
        for k, o in self.by_op("RegisterHousehold"):
            made[o["invoke"]["args"]["household"]] = k
            h, out = o["invoke"]["args"]["household"], self.outcome(k)
            if out == "ok" and h not in homes:
                self.bad("acknowledged household %s missing" % h, k,
                         kind="lost")
            if out == "fail" and h in homes:
                self.bad("failed RegisterHousehold %s applied" % h, k,
                         kind="effect")
        for h in homes - set(made):
            self.bad("household %s never registered" % h, kind="phantom")
        # applications: per household, every acknowledged one present, and
        # no more others than submits of unknown outcome (a definite
        # failure, e.g. a second submit refused by invariant 2, made none)
        by_home = collections.defaultdict(list)
        for a in apps.values():
            by_home[a["household_no"]].append(a)
        submits = collections.defaultdict(list)
        for k, o in self.by_op("SubmitApplication"):
            h, out = o["invoke"]["args"]["household"], self.outcome(k)
            submits[h].append(k)
            if out == "ok":
                a = apps.get(o["end"]["result"].get("application"))
                if a is None or a["household_no"] != h:
                    self.bad("acknowledged application of %s missing" % h, k,
                             kind="lost")
        for h, lst in by_home.items():
            keys = submits.get(h, [])
            acked = {self.ops[k]["end"]["result"].get("application")
                     for k in keys if self.outcome(k) == "ok"}
            maybe = sum(1 for k in keys if self.outcome(k) == "unknown")
            extra = [a for a in lst if a["id"] not in acked]
            if len(extra) > maybe:
                self.bad("%d applications of %s that no acknowledged or "
                         "unknown submit made: %s" % (len(extra), h, extra),
                         *keys, kind="phantom")
        # approvals: APPROVED/PAID needs an ok or unknown approve of it; a
        # failed approve (e.g. of one already approved) changed nothing
        approves = collections.defaultdict(list)
        for k, o in self.by_op("ApproveApplication"):
            i, out = o["invoke"]["args"]["id"], self.outcome(k)
            approves[i].append(k)
            st = apps.get(i, {}).get("status")
            if out == "ok" and st not in ("APP_APPROVED", "APP_PAID"):
                self.bad("acknowledged approval of %d: status %s" % (i, st), k,
                         kind="lost")
        for a in apps.values():
            if a["status"] in ("APP_APPROVED", "APP_PAID") and not any(
                    self.outcome(k) != "fail" for k in approves[a["id"]]):
                self.bad("application %d %s, never approved (or only by "
                         "failed approvals)" % (a["id"], a["status"]),
                         *approves[a["id"]], kind="phantom")
        self.check_batches(apps)

    def check_batches(self, apps):
        batches = {b["id"]: b for b in self.final["batches"]
                   if b["program_code"] == "CHAOS"}
        creates = {}
        for k, o in self.by_op("CreatePaymentBatch"):
            ids, out = o["invoke"]["args"]["application_ids"], self.outcome(k)
            creates[tuple(ids)] = k
            if out == "ok":
                b = batches.get(o["end"]["result"].get("batch"))
                if b is None or b["application_ids"] != ids:
                    self.bad("acknowledged batch of %s missing: %s" % (ids, b),
                             k, kind="lost")
            if out == "fail" and any(b["application_ids"] == ids
                                     for b in batches.values()):
                self.bad("failed CreatePaymentBatch %s applied" % ids, k,
                         kind="effect")
        for b in batches.values():
            if tuple(b["application_ids"]) not in creates:
                self.bad("batch %d never created by a client: %s"
                         % (b["id"], b), kind="phantom")
        confirms = {}
        for k, o in self.by_op("ConfirmPaymentBatch"):
            i, out = o["invoke"]["args"]["id"], self.outcome(k)
            confirms[i] = k
            st = batches.get(i, {}).get("status")
            if out == "ok" and st != "BATCH_CONFIRMED":
                self.bad("acknowledged confirmation of batch %d: %s"
                         % (i, st), k, kind="lost")
            if out == "fail" and st == "BATCH_CONFIRMED":
                self.bad("failed confirmation of batch %d applied" % i, k,
                         kind="effect")
        for b in batches.values():
            if b["status"] == "BATCH_CONFIRMED" and b["id"] not in confirms:
                self.bad("batch %d confirmed, never by a client" % b["id"],
                         kind="phantom")

    # ------------------------------------------------------ invariants
    def check_invariants(self):
        apps = self.final["applications"]
        for p in self.final["programs"]:
            mine = [a for a in apps if a["program_code"] == p["code"]]
            if p["budget"] != p["available"] + p["reserved"] + p["paid"] or \
                    min(p["available"], p["reserved"], p["paid"]) < 0:
                self.bad("invariant 1: program %s budget %d != available %d"
                         " + reserved %d + paid %d" % (
                             p["code"], p["budget"], p["available"],
                             p["reserved"], p["paid"]), kind="invariant")
            for st, field in (("APP_APPROVED", "reserved"),
                              ("APP_PAID", "paid")):
                s = sum(a["amount"] for a in mine if a["status"] == st)
                if s != p[field]:
                    self.bad("invariant 1: program %s %s %d, its %s "
                             "applications sum to %d"
                             % (p["code"], field, p[field], st, s),
                             kind="invariant")
        live = collections.Counter((a["program_code"], a["household_no"])
                                   for a in apps if a["status"] in LIVE)
        for ph, n in live.items():
            if n > 1:
                self.bad("invariant 2: %d live applications of %s"
                         % (n, ph), kind="invariant")
        in_confirmed = collections.Counter()
        byid = {a["id"]: a for a in apps}
        for b in self.final["batches"]:
            if b["status"] == "BATCH_CONFIRMED":
                in_confirmed.update(b["application_ids"])
                if b["confirmed_by"] == b["created_by"]:
                    self.bad("invariant 4: batch %d confirmed by its creator"
                             % b["id"], kind="invariant")
        for i, n in in_confirmed.items():
            if n > 1 or byid.get(i, {}).get("status") not in (
                    "APP_PAID", "APP_RETURNED"):
                self.bad("invariant 3: application %d in %d confirmed "
                         "batches, status %s"
                         % (i, n, byid.get(i, {}).get("status")),
                         kind="invariant")
        for a in apps:
            if a["status"] == "APP_PAID" and in_confirmed[a["id"]] != 1:
                self.bad("invariant 3: application %d PAID outside one "
                         "confirmed batch" % a["id"], kind="invariant")
            if a["decided_by"] and a["decided_by"] == a["submitted_by"]:
                self.bad("invariant 4: application %d decided by its "
                         "submitter" % a["id"], kind="invariant")
        prev = "00" * 32
        for n, r in enumerate(self.final["audit"], 1):
            if r["seq"] != n or r["prev_hash"] != prev:
                self.bad("invariant 5: audit chain breaks at seq %d "
                         "(position %d)" % (r["seq"], n), kind="invariant")
                break
            prev = r["hash"]
        for i, st in sorted(self.final["nodes"].items()):
            if not st.get("verify_ok"):
                self.bad("invariant 5: node %s VerifyAudit: %s" % (i, st),
                         kind="invariant")
        digests = {st.get("digest") for st in self.final["nodes"].values()}
        applied = {st.get("applied_index")
                   for st in self.final["nodes"].values()}
        if not self.final.get("converged") or len(digests) != 1 or \
                len(applied) != 1 or None in digests:
            self.bad("replicas differ: %s" % self.final["nodes"],
                     kind="replicas")

    # --------------------------------------------------------- summary
    def rto(self):
        oks = sorted((o["end"]["t"], o["invoke"]["t"])
                     for o in self.ops.values()
                     if o["end"] is not None and o["end"]["ev"] == "ok" and
                     o["invoke"]["op"] in linear.WRITES)
        per = collections.defaultdict(list)
        for f in (e for e in self.events if e["ev"] == "fault"):
            after = [end for end, inv in oks if inv >= f["t"]]
            if after:
                per[f["kind"]].append(round(min(after) - f["t"], 3))
        return {k: sorted(v) for k, v in sorted(per.items())}

    def leader_back(self):
        """Per fault kind: seconds from injection until a majority named a
        leader again after healing (includes the fault's duration)."""
        per = collections.defaultdict(list)
        for f in (e for e in self.events if e["ev"] == "fault"):
            if f.get("recover_t") is not None:
                per[f["kind"]].append(round(f["recover_t"] - f["t"], 3))
        return {k: sorted(v) for k, v in sorted(per.items())}

    def run(self):
        self.check_audit_keys()
        self.check_state()
        self.check_invariants()
        households = linear.check(
            self.ops, self.final,
            lambda what, *keys: self.bad(what, *keys, kind="linear"))
        rto, back = self.rto(), self.leader_back()
        counts = collections.Counter(self.outcome(k) for k in self.ops)
        per_op = collections.defaultdict(collections.Counter)
        for k, o in self.ops.items():
            per_op[o["invoke"]["op"]][self.outcome(k)] += 1
        faults = collections.Counter(e["kind"] for e in self.events
                                     if e["ev"] == "fault")
        return {"seed": self.seed,
                "ops": {x: counts.get(x, 0) for x in ("ok", "fail",
                                                        "unknown")},
                "ops_by_kind": {k: dict(v) for k, v in sorted(per_op.items())},
                "faults": dict(sorted(faults.items())),
                "linear_households": households,
                "rto_s": dist(rto),
                "leader_back_s": dist(back),
                "samples": {"rto_s": rto, "leader_back_s": back},
                "violations": self.violations}


def dist(per):
    """{kind: [seconds]} -> {kind: {n, min, median, p90, max}}."""
    return {k: {"n": len(v), "min": min(v),
                "median": round(statistics.median(v), 3),
                "p90": p90(v), "max": max(v)}
            for k, v in sorted(per.items()) if v}


def p90(v):
    """The nearest-rank 90th percentile: the smallest sample with at least
    90% of the samples at or below it."""
    s = sorted(v)
    return s[max(0, -(-9 * len(s) // 10) - 1)]


def check(events, final):
    return Checker(events, final).run()


def main(argv):
    if len(argv) != 2:
        print("usage: chaos/check.py RUN_DIR", file=sys.stderr)
        return 2
    try:
        events = H.load(os.path.join(argv[1], "history.jsonl"))
        with open(os.path.join(argv[1], "final.json")) as f:
            final = json.load(f)
        s = check(events, final)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        print("chaos/check.py: cannot read the run in %s: %r (nothing "
              "written)" % (argv[1], e), file=sys.stderr)
        return 2
    with open(os.path.join(argv[1], "summary.json"), "w") as f:
        json.dump(s, f, indent=1, sort_keys=True)
    print(json.dumps({k: v for k, v in s.items() if k != "violations"},
                     sort_keys=True))
    for v in s["violations"]:
        print("VIOLATION:", json.dumps(v, sort_keys=True))
    return 1 if s["violations"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
