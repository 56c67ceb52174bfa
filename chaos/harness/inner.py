"""The run inside the client namespace (chaos/run re-executes itself
there): start the cluster, the clients and the fault plan; heal; the final
read phase (final.json); the checker (summary.json)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import grpc

import check
import workload as W
from harness import clients, faults, nodelog, patience, plan, scrub
from harness.history import History, load
from harness.netcluster import NetCluster

PLAN_LEN = 100000       # more than any run injects: time ends the plan
# Idle-machine bounds, each scaled by the load when its wait starts
# (harness.patience).
JOIN_S = clients.WRITE_DEADLINE_S + 10.0  # the clients stop
CONVERGE_S = 60.0       # every node at the same applied index and digest
READ_S = 30.0           # one VerifyAudit, one page of a listing
LEADER_S = 30.0         # a majority leader for the final read
START_S = 60.0          # the first leader
STOP_S = 30.0           # each node's exit after SIGTERM (clean stop)


def pager(call, req_type, field, **kw):
    token = ""
    while True:
        page = call(req_type(page_size=1000, page_token=token, **kw),
                    timeout=patience.scaled(READ_S))
        yield from getattr(page, field)
        token = page.next_page_token
        if not token:
            return


def final_read(c):
    """The final state as the checker reads it (docs/chaos.md "Checker")."""
    nodes = c.ids()
    S, L = c.s["service_pb2"], c.s["ledger_pb2"]
    out = {"converged": False, "nodes": {}}
    # Converged: every node answers with the same applied index and state
    # digest in one round (the cluster's own periodic entries keep moving
    # both, so the nodes are compared round by round, not one by one).
    end = time.monotonic() + patience.scaled(CONVERGE_S)
    sts = []
    while time.monotonic() < end:
        sts = [c.status(i, digest=True, timeout=5) for i in nodes]
        if None not in sts and \
                len({(s.applied_index, s.state_digest) for s in sts}) == 1:
            out["converged"] = True
            break
        time.sleep(0.1)
    for i, st in zip(nodes, sts):
        node = {"applied_index": st.applied_index if st else None,
                "digest": st.state_digest.hex() if st else None}
        try:
            v = c.ledger(i).VerifyAudit(S.VerifyAuditRequest(),
                                        timeout=patience.scaled(READ_S))
            node.update(verify_ok=v.ok, verify_records=v.records,
                        verify_msg=v.message)
        except grpc.RpcError as e:
            node.update(verify_ok=False, verify_msg=str(e.code()))
        out["nodes"][str(i)] = node
    lead = c.wait_leader(patience.scaled(LEADER_S), majority=True)
    led = c.ledger(lead)
    st_name = L.ApplicationStatus.Name
    out["households"] = [h.household_no for h in pager(
        led.ListHouseholds, S.ListRequest, "households")]
    out["applications"] = [
        {"id": a.id, "program_code": a.program_code,
         "household_no": a.household_no, "status": st_name(a.status),
         "amount": a.amount, "submitted_by": a.submitted_by,
         "decided_by": a.decided_by, "batch_id": a.batch_id}
        for a in pager(led.ListApplications, S.ListApplicationsRequest,
                       "applications")]
    out["batches"] = [
        {"id": b.id, "program_code": b.program_code,
         "application_ids": list(b.application_ids),
         "status": L.BatchStatus.Name(b.status), "created_by": b.created_by,
         "confirmed_by": b.confirmed_by}
        for b in pager(led.ListPaymentBatches, S.ListRequest, "batches")]
    out["programs"] = [
        {"code": p.code, "budget": p.budget, "available": p.available,
         "reserved": p.reserved, "paid": p.paid}
        for p in pager(led.ListPrograms, S.ListRequest, "programs")]
    out["audit"] = [
        {"seq": r.seq, "command": r.command, "object": r.object,
         "outcome": int(r.outcome), "client_id": r.client_id,
         "client_seq": r.client_seq, "prev_hash": r.prev_hash.hex(),
         "hash": r.hash.hex()}
        for r in pager(led.ListAudit, S.ListRequest, "records")]
    return out


def run(a, net):
    # SIGTERM (from chaos/run's own stop) unwinds through the finally
    # below: nodes killed by PID, the cluster folder removed.
    signal.signal(signal.SIGTERM, lambda sig, _f: sys.exit(128 + sig))
    kinds = sorted(a.kinds or plan.default_kinds())
    print("chaos: seed %d (replay: chaos/run KYUFUD --seed %d%s%s%s)"
          % (a.seed, a.seed, " --cover" if a.cover else "",
             " --settle" if a.settle else "",
             (" --kinds " + ",".join(a.kinds) if a.kinds else "")
             + (" --snapshot-threshold %d" % a.snapshot_threshold
                if a.snapshot_threshold else "")),
          flush=True)
    why = faults.missing(a.kyufud, kinds)
    if why:
        print("SKIP: chaos/run: %s" % why, flush=True)
        return 77
    the_plan = plan.make(a.seed, PLAN_LEN, cover=a.cover, kinds=kinds)
    print("chaos: plan starts %s" % json.dumps(the_plan[:8]), flush=True)
    t_start = time.monotonic()
    snap = {}
    if a.snapshot_threshold:
        snap = {"snapshot_threshold": a.snapshot_threshold,
                "snapshot_trailing": max(2, a.snapshot_threshold // 2)}
    c = NetCluster(a.kyufud, net, **snap)
    c.kyufuctl = a.kyufuctl  # the replace-node kinds run it
    print("chaos: cluster folder %s" % c.dir, flush=True)
    hist = History(os.path.join(a.out, "history.jsonl"))
    harness_errors = []
    injected = []
    try:
        t_made = time.monotonic()
        faults.setup_all(c, kinds, a.seed)
        c.start_all()
        c.wait_leader(patience.scaled(START_S))
        t_led = time.monotonic()
        W.Ledger(c, "setup").setup(program=clients.PROGRAM,
                                   budget=clients.BUDGET, unit=clients.UNIT)
        hist.write("meta", seed=a.seed, seconds=a.seconds, cover=a.cover,
                   settle=a.settle, clients=clients.CLIENTS, kinds=kinds,
                   snapshot_threshold=a.snapshot_threshold)
        print("chaos: ready in %.1f s (certificates %.1f, leader %.1f, "
              "accounts %.1f)" % (time.monotonic() - t_start,
                                  t_made - t_start, t_led - t_made,
                                  time.monotonic() - t_led), flush=True)
        stop = threading.Event()
        cs = clients.start(c, hist, stop, a.seed)
        inj = faults.Injector(c, net, hist, settle=a.settle, out=a.out)
        end = time.monotonic() + a.seconds
        time.sleep(1.0)
        for f in the_plan:
            # --cover: every kind once even if that takes longer
            covered = not a.cover or set(injected) >= set(kinds)
            if covered and time.monotonic() + f["duration"] > end:
                break
            ev = inj.inject(f)
            injected.append(ev["kind"])
            print("chaos: %-17s node %d  leader back after %s s" % (
                ev["kind"], ev["node"],
                None if ev["recover_t"] is None else
                round(ev["recover_t"] - ev["t"], 2)), flush=True)
            if inj.errors:
                break
        inj.heal_all()
        harness_errors += inj.errors
        stop.set()
        left = clients.join(cs, patience.scaled(JOIN_S))
        if left:
            harness_errors.append("clients still running: %s" % left)
        harness_errors += ["%s crashed: %s" % (x.name, x.crashed)
                           for x in cs if x.crashed]
        if a.cover and set(injected) != set(kinds):
            harness_errors.append("--cover: kinds not injected: %s" % sorted(
                set(kinds) - set(injected)))
        hist.close()
        harness_errors += faults.verdicts(
            load(os.path.join(a.out, "history.jsonl")))
        # A scrub after the last fault (docs/scrub.md): a replica whose
        # store silently differs stops now (exit 4: "exited on its own"
        # below), and every node must have passed one.
        t_scrub = time.monotonic()
        for i in c.ids():
            if c.alive(i):
                v = scrub.wait(c, i, nodelog.size(c.log_path(i)))
                if v != "passed":
                    harness_errors.append("final scrub on node %d: %s"
                                          % (i, v or "no verdict in %.0f s"
                                             % scrub.WAIT_S))
        print("chaos: final scrub in %.1f s" % (time.monotonic() - t_scrub),
              flush=True)
        t_final = time.monotonic()
        final = final_read(c)
        harness_errors += ["node %d exited on its own (rc %s)"
                           % (i, c.procs[i].poll()) for i in inj.crashed()]
        print("chaos: final read in %.1f s" % (time.monotonic() - t_final),
              flush=True)
        with open(os.path.join(a.out, "final.json"), "w") as f:
            json.dump(final, f)
        stop_s = patience.scaled(STOP_S)
        try:
            c.stop_clean(timeout=stop_s)
        except AssertionError as e:
            harness_errors.append("clean stop: %s" % str(e)[:3000])
        except subprocess.TimeoutExpired as e:
            # A node busy on its loop (e.g. replaying its log after a
            # power cut) handles SIGTERM only when that work ends.
            harness_errors.append("clean stop: kyufud --config %s did not "
                                  "exit within %.0f s of SIGTERM"
                                  % (e.cmd[-1], stop_s))
    except Exception as e:
        harness_errors.append("harness: %r" % e)
        raise
    finally:
        summary = None
        if os.path.exists(os.path.join(a.out, "final.json")):
            summary = check.check(load(os.path.join(a.out, "history.jsonl")),
                                  json.load(open(os.path.join(
                                      a.out, "final.json"))))
            summary["harness_errors"] = harness_errors
            with open(os.path.join(a.out, "summary.json"), "w") as f:
                json.dump(summary, f, indent=1, sort_keys=True)
        failed = summary is None or summary["violations"] or harness_errors
        if failed:
            for i in sorted(c.procs):  # removed nodes' too
                try:
                    shutil.copy(c.log_path(i),
                                os.path.join(a.out, "node%d.log" % i))
                except OSError:
                    pass
        faults.teardown_all(c)
        c.close()
    print(json.dumps({k: v for k, v in summary.items()
                      if k != "violations"}, sort_keys=True))
    for v in summary["violations"]:
        print("VIOLATION:", json.dumps(v, sort_keys=True))
    print("chaos: seed %d: %d ok, %d fail, %d unknown; %d faults; "
          "%d violations, %d harness errors: %s (%s)" % (
              a.seed, summary["ops"]["ok"], summary["ops"]["fail"],
              summary["ops"]["unknown"], sum(summary["faults"].values()),
              len(summary["violations"]), len(harness_errors),
              "FAIL" if failed else "PASS", a.out))
    return 1 if failed else 0
