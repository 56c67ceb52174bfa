#!/usr/bin/python3
"""The chaos checker finds what it must (no cluster, a few seconds): a
consistent synthetic history and final state has no violation, and each of
the faults the checker exists for (an acknowledged write lost or applied
twice, a failed write applied, a write never invoked, a write that must be
refused acknowledged, a broken invariant, a broken audit chain, replicas
that differ) gives at least one.  Also: unreadable runs and bad arguments
of chaos/check.py, chaos/run and chaos/soak, and the seeded plan."""
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check  # noqa: E402


def H(i):
    return "%064x" % i


def base():
    ev = [{"ev": "meta", "seed": 7, "t": 0.0}]

    def op(client, seq, name, args, end, t, **res):
        ev.append({"ev": "invoke", "client": client, "seq": seq, "op": name,
                   "args": args, "t": t})
        ev.append(dict({"ev": end, "client": client, "seq": seq, "op": name,
                        "t": t + 0.1}, **res))
    op("chaos-1-clerk", 1, "RegisterHousehold", {"household": "C1-1"}, "ok",
       1.0, result={"object": "household/C1-1"})
    op("chaos-1-clerk", 2, "RegisterHousehold", {"household": "C1-2"},
       "fail", 1.2, code="INVALID_ARGUMENT")
    op("chaos-1-clerk", 3, "SubmitApplication",
       {"program": "CHAOS", "household": "C1-1"}, "ok", 1.4,
       result={"object": "application/1", "application": 1})
    op("chaos-1-appr", 1, "ApproveApplication", {"id": 1}, "ok", 1.6,
       result={"object": "application/1"})
    op("chaos-1-clerk", 4, "RegisterHousehold", {"household": "C1-3"},
       "unknown", 1.8, code="DEADLINE_EXCEEDED")
    # refused on purpose: a second application, a second approval
    op("chaos-1-clerk", 5, "SubmitApplication",
       {"program": "CHAOS", "household": "C1-1", "refusal_expected": True},
       "fail", 2.0,
       code="FAILED_PRECONDITION")
    op("chaos-1-appr", 2, "ApproveApplication",
       {"id": 1, "refusal_expected": True}, "fail", 2.2,
       code="FAILED_PRECONDITION")
    ev.append({"ev": "fault", "kind": "kill-leader", "node": 1, "t": 1.3,
               "heal_t": 2.0, "recover_t": 2.5})
    audit = []
    for n, (cmd, obj, cid, cseq, outcome) in enumerate([
            ("CreateProgram", "program/CHAOS", "setup", 1, 0),
            ("RegisterHousehold", "household/C1-1", "chaos-1-clerk", 1, 0),
            ("RegisterHousehold", "household/C1-2", "chaos-1-clerk", 2, 3),
            ("SubmitApplication", "application/1", "chaos-1-clerk", 3, 0),
            ("ApproveApplication", "application/1", "chaos-1-appr", 1, 0),
            ("SubmitApplication", "application", "chaos-1-clerk", 5, 9),
            ("ApproveApplication", "application/1", "chaos-1-appr", 2, 9)],
            1):
        audit.append({"seq": n, "command": cmd, "object": obj,
                      "outcome": outcome, "client_id": cid,
                      "client_seq": cseq, "prev_hash": H(n - 1) if n > 1
                      else "00" * 32, "hash": H(n)})
    final = {
        "converged": True,
        "nodes": {str(i): {"applied_index": 9, "digest": "ab",
                           "verify_ok": True} for i in (1, 2, 3)},
        "households": ["C1-1"],
        "applications": [{"id": 1, "program_code": "CHAOS",
                          "household_no": "C1-1", "status": "APP_APPROVED",
                          "amount": 1000, "submitted_by": "clerk1",
                          "decided_by": "approver1", "batch_id": 0}],
        "batches": [],
        "programs": [{"code": "CHAOS", "budget": 10000, "available": 9000,
                      "reserved": 1000, "paid": 0}],
        "audit": audit}
    return ev, final


def violations(ev, final):
    return check.check(ev, final)["violations"]


def main():
    ev, final = base()
    s = check.check(ev, final)
    assert s["violations"] == [], s["violations"]
    assert s["ops"] == {"ok": 3, "fail": 3, "unknown": 1}, s["ops"]
    assert s["faults"] == {"kill-leader": 1}, s
    assert s["rto_s"]["kill-leader"]["max"] == 0.2, s["rto_s"]

    def mutated(what, f):
        e2, f2 = copy.deepcopy(ev), copy.deepcopy(final)
        f(e2, f2)
        v = violations(e2, f2)
        assert v, "checker missed: %s" % what
        assert all(x["seed"] == 7 for x in v), v
        return v

    def lose(e, f):
        f["households"].remove("C1-1")
    v = mutated("acknowledged household lost", lose)
    assert any(x["history"] for x in v), v  # with its history excerpt
    mutated("acknowledged write not in audit",
            lambda e, f: f["audit"].pop(1))
    mutated("write applied twice", lambda e, f: f["audit"].append(
        dict(f["audit"][1], seq=6)))
    mutated("failed write applied",
            lambda e, f: f["households"].append("C1-2"))
    mutated("failed write with an OK record",
            lambda e, f: f["audit"][2].update(outcome=0))
    mutated("household never invoked",
            lambda e, f: f["households"].append("C9-9"))
    mutated("audit key never invoked", lambda e, f: f["audit"].append(
        dict(f["audit"][1], client_seq=99)))
    mutated("approval lost", lambda e, f: f["applications"][0].update(
        status="APP_RECEIVED"))
    mutated("a refused second submit made an application",
            lambda e, f: f["applications"].append(dict(
                f["applications"][0], id=2, status="APP_CANCELLED")))

    def only_failed_approval(e, f):
        for x in e:
            if x.get("client") == "chaos-1-appr" and x.get("seq") == 1 \
                    and x["ev"] == "ok":
                x.update(ev="fail", code="FAILED_PRECONDITION")
    mutated("approved by a refused approval only", only_failed_approval)
    def refusal_acked(e, f):
        for x in e:
            if x.get("client") == "chaos-1-appr" and x.get("seq") == 2 \
                    and x["ev"] == "fail":
                x.update(ev="ok", result={"object": "application/1"})
        f["audit"][6]["outcome"] = 0
    mutated("a write that must be refused acknowledged", refusal_acked)
    mutated("budget does not add up",
            lambda e, f: f["programs"][0].update(available=8000))
    mutated("reserved differs from approved sum",
            lambda e, f: f["programs"][0].update(reserved=2000,
                                                 available=8000))
    mutated("approver is submitter", lambda e, f: f["applications"][0]
            .update(decided_by="clerk1"))
    mutated("audit chain broken",
            lambda e, f: f["audit"][3].update(prev_hash=H(77)))
    mutated("VerifyAudit fails on a node",
            lambda e, f: f["nodes"]["2"].update(verify_ok=False))
    mutated("digests differ", lambda e, f: f["nodes"]["3"].update(
        digest="cd"))
    mutated("two live applications of a household",
            lambda e, f: f["applications"].append(dict(
                f["applications"][0], id=2, status="APP_RECEIVED")))
    hostile(ev, final)
    plans()
    print("test_check: ok")


def plans():
    """The same seed gives the same plan; --cover starts with every kind
    once; another seed gives another plan."""
    from harness import faults, plan
    a, b = plan.make(13, 60, cover=True), plan.make(13, 60, cover=True)
    assert a == b
    assert sorted(f["kind"] for f in a[:len(plan.KINDS)]) == \
        sorted(plan.KINDS), a
    assert plan.make(14, 60, cover=True) != a
    assert plan.make(13, 60) != a  # the cover prefix is part of the plan
    for f in a:
        assert plan.DURATION_S[0] <= f["duration"] <= plan.DURATION_S[1]
        assert 0 <= f["pick"] < 1 and f["action"] in (
            "kill", "pause", "partition", "bridge", "oneway") + tuple(
                faults.ACTIONS), f


def hostile(ev, final):
    """check.py on a run folder: 0 for the good run, 1 with a violation,
    2 with a clear message and no summary.json for unreadable input; and
    chaos/run refuses bad arguments before it touches anything."""
    here = os.path.dirname(os.path.abspath(__file__))
    d = tempfile.mkdtemp(prefix="kyufu-chaos-check-")
    try:
        def run(hist_text, final_obj):
            with open(os.path.join(d, "history.jsonl"), "w") as f:
                f.write(hist_text)
            with open(os.path.join(d, "final.json"), "w") as f:
                f.write(final_obj if isinstance(final_obj, str)
                        else json.dumps(final_obj))
            if os.path.exists(os.path.join(d, "summary.json")):
                os.unlink(os.path.join(d, "summary.json"))
            return subprocess.run([sys.executable,
                                   os.path.join(here, "check.py"), d],
                                  capture_output=True, text=True)
        good = "".join(json.dumps(e) + "\n" for e in ev)
        r = run(good, final)
        assert r.returncode == 0, r
        lost = copy.deepcopy(final)
        lost["households"] = []
        r = run(good, lost)
        assert r.returncode == 1 and "VIOLATION" in r.stdout, r
        for h, f, what in ((good, "{not json", "final.json not JSON"),
                           ("[1, 2]\n", final, "history event a list"),
                           ('{"ev": "invoke"}\n', final, "invoke w/o keys"),
                           (good, {"audit": []}, "final without lists"),
                           (good[:-40], final, "history cut mid-line")):
            r = run(h, f)
            assert r.returncode == 2, (what, r)
            assert "cannot read the run" in r.stderr, (what, r.stderr)
            assert not os.path.exists(os.path.join(d, "summary.json")), what
        r = subprocess.run([sys.executable, os.path.join(here, "check.py")],
                           capture_output=True, text=True)
        assert r.returncode == 2 and "usage" in r.stderr, r
        for args in (["--seconds", "0"], ["--seconds", "x"],
                     ["--seed", "-1"], ["--bogus"],
                     ["--snapshot-threshold", "3"],
                     ["--kinds", "replace-leader", "--kyufuctl",
                      os.path.join(d, "no-such-kyufuctl")]):
            r = subprocess.run([sys.executable, os.path.join(here, "run"),
                                sys.executable] + args,
                               capture_output=True, text=True)
            assert r.returncode == 2 and "chaos/run" in r.stderr, (args, r)
        for args in (["--minutes", "0"], ["--minutes", "1",
                                           "--run-seconds", "5"], []):
            r = subprocess.run([sys.executable, os.path.join(here, "soak"),
                                sys.executable] + args,
                               capture_output=True, text=True)
            assert r.returncode == 2 and "chaos/soak" in r.stderr, (args, r)
        r = subprocess.run([sys.executable, os.path.join(here, "run"),
                            os.path.join(d, "no-such-kyufud")],
                           capture_output=True, text=True)
        assert r.returncode == 2 and "not an executable" in r.stderr, r
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    main()
