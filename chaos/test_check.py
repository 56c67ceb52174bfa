#!/usr/bin/python3
"""The chaos checker finds what it must (no cluster, a few seconds): a
consistent synthetic history and final state has no violation, and each of
the faults the checker exists for (an acknowledged write lost or applied
twice, a failed write applied, a write never invoked, a write that must be
refused acknowledged, a broken invariant, a broken audit chain, replicas
that differ) gives at least one.  Also: unreadable runs and bad arguments
of chaos/check.py, chaos/run and chaos/soak, and the seeded plan."""
import contextlib
import copy
import importlib.machinery
import importlib.util
import io
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
       code="ALREADY_EXISTS")
    op("chaos-1-appr", 2, "ApproveApplication",
       {"id": 1, "refusal_expected": True}, "fail", 2.2,
       code="FAILED_PRECONDITION")
    # a second household through the whole path, read back when paid
    op("chaos-1-clerk", 6, "RegisterHousehold", {"household": "C1-4"}, "ok",
       3.0, result={"object": "household/C1-4"})
    op("chaos-1-clerk", 7, "SubmitApplication",
       {"program": "CHAOS", "household": "C1-4"}, "ok", 3.2,
       result={"object": "application/2", "application": 2})
    op("chaos-1-read", 1, "GetApplication", {"id": 2}, "ok", 3.4,
       result={"status": "APP_RECEIVED", "batch_id": 0})
    op("chaos-1-appr", 3, "ApproveApplication", {"id": 2}, "ok", 3.6,
       result={"object": "application/2"})
    op("chaos-1-clerk", 8, "CreatePaymentBatch",
       {"program": "CHAOS", "application_ids": [2]}, "ok", 3.8,
       result={"object": "batch/1", "batch": 1})
    op("chaos-1-appr", 4, "ConfirmPaymentBatch", {"id": 1}, "ok", 4.0,
       result={"object": "batch/1"})
    op("chaos-1-read", 2, "GetApplication", {"id": 2}, "ok", 4.2,
       result={"status": "APP_PAID", "batch_id": 1})
    op("chaos-1-read", 3, "GetApplication", {"id": 1}, "ok", 4.4,
       result={"status": "APP_APPROVED", "batch_id": 0})
    op("chaos-1-read", 4, "GetApplication", {"id": 1}, "unknown", 4.6,
       code="DEADLINE_EXCEEDED")
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
            ("ApproveApplication", "application/1", "chaos-1-appr", 2, 9),
            ("RegisterHousehold", "household/C1-4", "chaos-1-clerk", 6, 0),
            ("SubmitApplication", "application/2", "chaos-1-clerk", 7, 0),
            ("ApproveApplication", "application/2", "chaos-1-appr", 3, 0),
            ("CreatePaymentBatch", "batch/1", "chaos-1-clerk", 8, 0),
            ("ConfirmPaymentBatch", "batch/1", "chaos-1-appr", 4, 0)],
            1):
        audit.append({"seq": n, "command": cmd, "object": obj,
                      "outcome": outcome, "client_id": cid,
                      "client_seq": cseq, "prev_hash": H(n - 1) if n > 1
                      else "00" * 32, "hash": H(n)})
    final = {
        "converged": True,
        "nodes": {str(i): {"applied_index": 9, "digest": "ab",
                           "verify_ok": True} for i in (1, 2, 3)},
        "households": ["C1-1", "C1-4"],
        "applications": [{"id": 1, "program_code": "CHAOS",
                          "household_no": "C1-1", "status": "APP_APPROVED",
                          "amount": 1000, "submitted_by": "clerk1",
                          "decided_by": "approver1", "batch_id": 0},
                         {"id": 2, "program_code": "CHAOS",
                          "household_no": "C1-4", "status": "APP_PAID",
                          "amount": 1000, "submitted_by": "clerk1",
                          "decided_by": "approver1", "batch_id": 1}],
        "batches": [{"id": 1, "program_code": "CHAOS",
                     "application_ids": [2], "status": "BATCH_CONFIRMED",
                     "created_by": "clerk1", "confirmed_by": "approver1"}],
        "programs": [{"code": "CHAOS", "budget": 10000, "available": 8000,
                      "reserved": 1000, "paid": 1000}],
        "audit": audit}
    return ev, final


def violations(ev, final):
    return check.check(ev, final)["violations"]


def main():
    ev, final = base()
    s = check.check(ev, final)
    assert s["violations"] == [], s["violations"]
    assert s["ops"] == {"ok": 11, "fail": 3, "unknown": 2}, s["ops"]
    assert s["linear_households"] == 4, s  # C1-1 .. C1-4
    assert s["faults"] == {"kill-leader": 1}, s
    assert s["rto_s"]["kill-leader"]["max"] == 0.2, s["rto_s"]
    assert s["rto_s"]["kill-leader"]["p90"] == 0.2, s["rto_s"]
    assert s["samples"]["rto_s"] == {"kill-leader": [0.2]}, s["samples"]

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
    assert any(x["kind"] == "lost" for x in v), v
    mutated("acknowledged write not in audit",
            lambda e, f: f["audit"].pop(1))
    kinds = {x["kind"] for x in mutated(
        "write applied twice",
        lambda e, f: f["audit"].append(dict(f["audit"][1], seq=6)))}
    assert "duplicate" in kinds, kinds
    kinds = {x["kind"] for x in mutated(
        "failed write applied",
        lambda e, f: f["households"].append("C1-2"))}
    assert "effect" in kinds, kinds
    mutated("failed write with an OK record",
            lambda e, f: f["audit"][2].update(outcome=0))
    kinds = {x["kind"] for x in mutated(
        "household never invoked",
        lambda e, f: f["households"].append("C9-9"))}
    assert kinds == {"phantom"}, kinds
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
    kinds = {x["kind"] for x in mutated(
        "budget does not add up",
        lambda e, f: f["programs"][0].update(available=7000))}
    assert kinds == {"invariant"}, kinds
    mutated("reserved differs from approved sum",
            lambda e, f: f["programs"][0].update(reserved=2000,
                                                 available=7000))
    mutated("approver is submitter", lambda e, f: f["applications"][0]
            .update(decided_by="clerk1"))
    mutated("audit chain broken",
            lambda e, f: f["audit"][3].update(prev_hash=H(77)))
    mutated("VerifyAudit fails on a node",
            lambda e, f: f["nodes"]["2"].update(verify_ok=False))
    kinds = {x["kind"] for x in mutated(
        "digests differ",
        lambda e, f: f["nodes"]["3"].update(digest="cd"))}
    assert kinds == {"replicas"}, kinds
    mutated("two live applications of a household",
            lambda e, f: f["applications"].append(dict(
                f["applications"][0], id=2, status="APP_RECEIVED")))
    linearizability(ev, final, mutated)
    soak_summary(s)
    hostile(ev, final)
    plans()
    print("test_check: ok")


def retime(e, client, seq, t):
    """Moves operation client/seq to [t, t + 0.1]."""
    for x in e:
        if x.get("client") == client and x.get("seq") == seq:
            x["t"] = t if x["ev"] == "invoke" else t + 0.1


def result(e, client, seq, **fields):
    for x in e:
        if x.get("client") == client and x.get("seq") == seq and \
                x["ev"] != "invoke":
            x.update(fields)


def linearizability(ev, final, mutated):
    """Per-household linearizability (chaos/linear.py): histories whose
    every write is applied once, whose invariants hold and whose final
    state is right, but whose order no ledger could have produced."""
    def lin(what, f):
        v = mutated(what, f)
        assert any(x["kind"] == "linear" for x in v), (what, v)
        return v
    v = lin("stale read after an acknowledged approval",
            lambda e, f: result(e, "chaos-1-read", 3, result={
                "status": "APP_RECEIVED", "batch_id": 0}))
    assert "C1-1" in v[0]["what"] and v[0]["history"], v
    lin("read sees the payment before the confirm was sent",
        lambda e, f: retime(e, "chaos-1-read", 2, 3.65))
    lin("read of the wrong batch",
        lambda e, f: result(e, "chaos-1-read", 2, result={
            "status": "APP_PAID", "batch_id": 7}))
    lin("acknowledged approval ended before its submit was sent",
        lambda e, f: retime(e, "chaos-1-appr", 1, 1.25))
    lin("refused approval while the application waited for one",
        lambda e, f: retime(e, "chaos-1-appr", 2, 1.48))
    lin("second application refused before there was a first",
        lambda e, f: retime(e, "chaos-1-clerk", 5, 1.15))
    lin("refusal with the wrong reason",
        lambda e, f: result(e, "chaos-1-clerk", 5, code="NOT_FOUND"))
    lin("confirmation acknowledged before its batch existed",
        lambda e, f: retime(e, "chaos-1-appr", 4, 3.65))
    lin("acknowledged application read as missing",
        lambda e, f: result(e, "chaos-1-read", 3, ev="fail",
                            code="NOT_FOUND"))
    lin("read of an application nobody made",
        lambda e, f: e.extend([
            {"ev": "invoke", "client": "chaos-1-read", "seq": 9,
             "op": "GetApplication", "args": {"id": 99}, "t": 5.0},
            {"ev": "ok", "client": "chaos-1-read", "seq": 9,
             "op": "GetApplication", "t": 5.1,
             "result": {"status": "APP_RECEIVED", "batch_id": 0}}]))
    # Clean variants: an unknown outcome may or may not have taken effect,
    # at any time after its invocation; operations that overlap may take
    # effect in either order.
    for what, f in (
            ("unknown registration applied",
             lambda e, f: f["households"].append("C1-3")),
            ("read overlapping the approval sees it",
             lambda e, f: (retime(e, "chaos-1-read", 1, 3.55),
                           result(e, "chaos-1-read", 1, result={
                               "status": "APP_APPROVED", "batch_id": 0}))),
            ("read overlapping the approval misses it",
             lambda e, f: retime(e, "chaos-1-read", 1, 3.65)),
            ("approval of unknown outcome, read as applied",
             lambda e, f: (result(e, "chaos-1-appr", 1, ev="unknown",
                                  code="DEADLINE_EXCEEDED"),
                           retime(e, "chaos-1-appr", 1, 1.6),
                           result(e, "chaos-1-read", 3, result={
                               "status": "APP_APPROVED", "batch_id": 0}))),
            ("missing read, refused read of nothing", lambda e, f: e.extend([
                {"ev": "invoke", "client": "chaos-1-read", "seq": 9,
                 "op": "GetApplication", "args": {"id": 99}, "t": 5.0},
                {"ev": "fail", "client": "chaos-1-read", "seq": 9,
                 "op": "GetApplication", "t": 5.1, "code": "NOT_FOUND"}]))):
        e2, f2 = copy.deepcopy(ev), copy.deepcopy(final)
        f(e2, f2)
        assert violations(e2, f2) == [], (what, violations(e2, f2))
    # The approval's outcome unknown, the application read RECEIVED twice
    # after the second approval was refused as "not received": no order.
    lin("refused as approved, then read as received",
        lambda e, f: (result(e, "chaos-1-appr", 1, ev="unknown",
                             code="DEADLINE_EXCEEDED"),
                      result(e, "chaos-1-read", 3, result={
                          "status": "APP_RECEIVED", "batch_id": 0}),
                      retime(e, "chaos-1-read", 4, 9.0),
                      result(e, "chaos-1-read", 4, ev="ok", result={
                          "status": "APP_RECEIVED", "batch_id": 0})))
    # The search bounds: a household it cannot decide is reported.
    for bound in ("STATES_MAX", "OPS_MAX"):
        keep = getattr(check.linear, bound)
        setattr(check.linear, bound, 2)
        try:
            v = violations(ev, final)
            assert any("undecided" in x["what"] for x in v), (bound, v)
        finally:
            setattr(check.linear, bound, keep)


def soak_summary(good):
    """chaos/soak --summarize: the runs' summaries pooled into soak.json,
    soak.md and a verdict; a run with a violation, a harness error, a
    non-zero exit or no summary fails the soak, by seed."""
    here = os.path.dirname(os.path.abspath(__file__))
    d = tempfile.mkdtemp(prefix="kyufu-chaos-soak-")

    def run_dir(seed, summary, rc=0, mtime=0):
        r = os.path.join(d, "seed-%d" % seed)
        os.mkdir(r)
        if summary is not None:
            with open(os.path.join(r, "summary.json"), "w") as f:
                f.write(summary if isinstance(summary, str)
                        else json.dumps(summary))
        with open(r + ".rc", "w") as f:
            f.write("%d\n" % rc)
        os.utime(r, (mtime, mtime))

    # chaos/soak in this process (a Python start costs ~1 s on the loaded
    # machine): its main() with stdout and stderr captured.
    loader = importlib.machinery.SourceFileLoader(
        "chaos_soak", os.path.join(here, "soak"))
    mod = importlib.util.module_from_spec(
        importlib.util.spec_from_loader("chaos_soak", loader))
    loader.exec_module(mod)

    def soak(*args):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = mod.main(list(args))
            except SystemExit as e:  # argparse's error()
                rc = e.code
        return subprocess.CompletedProcess(args, rc, out.getvalue(),
                                           err.getvalue())
    try:
        r = soak("--summarize", d)
        assert r.returncode == 2 and "no run folder" in r.stderr, r
        a = copy.deepcopy(good)
        a["samples"] = {"rto_s": {"kill-leader": [0.5, 1.0, 9.0],
                                  "pause-leader": [0.1]},
                        "leader_back_s": {"kill-leader": [2.0, 3.0, 4.0]}}
        a["faults"] = {"kill-leader": 3, "pause-leader": 1}
        a["harness_errors"] = []
        b = copy.deepcopy(a)
        b["samples"] = {"rto_s": {"kill-leader": [
            0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 2.0]}, "leader_back_s": {}}
        b["faults"] = {"kill-leader": 7}
        run_dir(1, a, mtime=1000)
        run_dir(2, b, mtime=2000)
        r = soak("--summarize", d)
        assert r.returncode == 0 and r.stdout.startswith("soak PASS: 2 runs"
                                                         " (0 failed)"), r
        with open(os.path.join(d, "soak.json")) as f:
            s = json.load(f)
        assert s["faults_total"] == 11 and s["faults"] == {
            "kill-leader": 10, "pause-leader": 1}, s
        assert s["ops"] == {k: 2 * v for k, v in good["ops"].items()}, s
        assert s["goal"] == {"faults": 1000, "met": False}, s
        assert s["linear_households"] == 8, s
        assert "oneway-leader" in s["kinds_missing"], s
        # ten kill-leader samples pooled: median of the two middle ones,
        # p90 the 9th smallest
        assert s["unavailability"]["rto_s"]["kill-leader"] == {
            "n": 10, "median": 0.65, "p90": 2.0, "max": 9.0}, s
        assert s["unavailability"]["leader_back_s"]["kill-leader"][
            "median"] == 3.0, s
        with open(os.path.join(d, "soak.md")) as f:
            md = f.read()
        assert "| `kill-leader` | 10 | 10 | 0.7 | 2.0 | 9.0 | 3 | 3.0 |" \
            in md, md
        assert "| `oneway-leader` | 0 | 0 | - |" in md, md
        assert "largest RTO 9.0 s (kill-leader)" in s["verdict"], s
        c = copy.deepcopy(a)
        c["violations"] = [{"what": "acknowledged household C1-1 missing",
                            "kind": "lost", "seed": 3, "history": []}]
        run_dir(3, c, rc=1, mtime=3000)
        run_dir(4, a, rc=1, mtime=4000)      # exit 1 (e.g. a node stuck)
        run_dir(5, None, rc=1, mtime=5000)   # no summary at all
        run_dir(6, "{not json", mtime=6000)  # unreadable summary
        with open(os.path.join(d, "seed-7.rc"), "w") as f:
            f.write("2\n")                   # ended before its folder
        r = soak("--summarize", d)
        assert r.returncode == 1, r
        with open(os.path.join(d, "soak.json")) as f:
            s = json.load(f)
        assert s["failed_seeds"] == [3, 4, 5, 6, 7], s
        assert s["violations"] == 1 and s["acknowledged_lost"] == 1, s
        assert s["violation_excerpts"][0]["seed"] == 3, s
        assert r.stdout.startswith("soak FAIL: 7 runs (5 failed: seeds "
                                   "3 4 5 6 7)") and \
            "1 violations (1 acknowledged writes lost)" in r.stdout, r
        for args in (["--summarize", os.path.join(d, "nope")],
                     ["--summarize", d, "--minutes", "3"],
                     [sys.executable, "--summarize", d]):
            r = soak(*args)
            assert r.returncode == 2 and "chaos/soak" in r.stderr, (args, r)
    finally:
        shutil.rmtree(d)


def plans():
    """The same seed gives the same plan; --cover starts with every kind
    once; another seed gives another plan."""
    from harness import faults, plan
    a, b = plan.make(13, 60, cover=True), plan.make(13, 60, cover=True)
    assert a == b
    kinds = plan.default_kinds()
    assert sorted(f["kind"] for f in a[:len(kinds)]) == kinds, a
    # A kind named only (a known gap) never enters a default plan.
    assert plan.NAMED_ONLY <= set(plan.KINDS)
    assert not plan.NAMED_ONLY & {f["kind"] for f in a}, a
    assert plan.make(14, 60, cover=True) != a
    assert plan.make(13, 60) != a  # the cover prefix is part of the plan
    for f in a:
        assert plan.DURATION_S[0] <= f["duration"] <= plan.DURATION_S[1]
        # The Injector's own actions, or one of a fault module's
        # (harness/faults.py ACTIONS).
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
                      os.path.join(d, "no-such-kyufuctl")],
                     ["--kinds", "disk-ful"], ["--kinds", ""],
                     ["--kinds", "disk-full,,corrupt-log"]):
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
