"""The chaos workload (docs/chaos.md "Workload and history"): CLIENTS
threads, each one client with a clerk and an approver idempotency client
id, looping over the ledger's write path through cluster.Writer (the same
key retried across nodes), reading its applications back now and then,
and recording invoke / ok / fail / unknown."""
import random
import threading
import time

import grpc

from cluster import Writer

CLIENTS = 6
PREFIX = "chaos-"
PROGRAM = "CHAOS"
UNIT = 1000
BUDGET = 10 ** 12
# A write retried this long without an answer is "unknown": longer than a
# fault (DURATION_S) plus an election, so most writes resolve.
WRITE_DEADLINE_S = 8.0
ATTEMPT_S = 1.5
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
             grpc.StatusCode.CANCELLED)
BATCH_EVERY = 4   # a batch once this many approved applications wait
# Share of steps that send a write the ledger must refuse (a second
# application of a household, a second approval): the checker then sees
# real definite failures, which must have changed nothing.
REFUSED_SHARE = 0.05
KEEP = 50         # done households / approved ids kept for those
# Share of steps that read one of the client's applications back
# (GetApplication, linearizable): the checker places each read in the
# application's order (chaos/linear.py), so a stale read after an
# acknowledged write is a violation.
READ_SHARE = 0.15


def household(L, no):
    return L.Household(
        household_no=no, head_name="Chaos Taro", member_names=["Chaos Hana"],
        address="1-2-3 Chuo, Kyufu City",
        bank=L.BankAccount(bank_code="0001", branch_code="001",
                           account_type="ordinary", account_no="1234567",
                           holder_kana="カオス タロウ"))


def result_fields(resp):
    r = resp.result
    out = {"code": int(r.code), "object": r.object,
           "raft_index": r.raft_index, "audit_seq": r.audit_seq}
    if r.HasField("application"):
        out["application"] = r.application.id
    if r.HasField("batch"):
        out["batch"] = r.batch.id
    return out


class Client(threading.Thread):
    def __init__(self, k, cluster, hist, stop, seed):
        super().__init__(name="chaos-client-%d" % k, daemon=True)
        self.k = k
        self.c = cluster
        self.L = cluster.s["ledger_pb2"]
        self.hist = hist
        self.stop = stop
        self.rnd = random.Random(seed * 1000 + k)
        self.clerk = Writer(cluster, "clerk1", "%s%d-clerk" % (PREFIX, k),
                            own_channels=True)
        self.appr = Writer(cluster, "approver1", "%s%d-appr" % (PREFIX, k),
                           own_channels=True)
        for w in (self.clerk, self.appr):
            w.node = self.rnd.randint(1, cluster.n)
        self.n_households = 0
        self.unsubmitted = []   # households registered (ok)
        self.submitted = []     # application ids (ok)
        self.approved = []      # application ids approved (ok), no batch
        self.batches = []       # batch ids created (ok), not confirmed
        self.done_homes = []    # households with an application (ok)
        self.done_apps = []     # application ids approved (ok)
        self.known = []         # application ids submitted (ok), to read
        self.reader = "%s%d-read" % (PREFIX, k)   # history id of reads
        self.reads = 0
        self.crashed = None

    def op(self, w, method, command, args):
        seq = w.seq + 1
        self.hist.write("invoke", client=w.client_id, seq=seq, op=method,
                        args=args)
        code, resp = w.call(method, command, deadline_s=WRITE_DEADLINE_S,
                            attempt_s=ATTEMPT_S)
        w.errors.clear()
        w.slow.clear()
        base = {"client": w.client_id, "seq": seq, "op": method}
        if code == grpc.StatusCode.OK and resp.result.code == 0:
            self.hist.write("ok", result=result_fields(resp), **base)
            return resp.result
        if code == grpc.StatusCode.OK:
            self.hist.write("fail", code=self.L.Code.Name(resp.result.code),
                            msg=resp.result.message, **base)
        elif code in RETRYABLE:
            self.hist.write("unknown", code=code.name, msg=str(resp), **base)
        else:
            self.hist.write("fail", code=code.name, msg=str(resp), **base)
        return None

    def read(self, a):
        """GetApplication(a), a linearizable read with the observer's
        token, retried on the next node like a write (UNAVAILABLE /
        DEADLINE_EXCEEDED / CANCELLED) until the write deadline; records
        the status and batch it saw."""
        S = self.c.s["service_pb2"]
        self.reads += 1
        base = {"client": self.reader, "seq": self.reads,
                "op": "GetApplication"}
        self.hist.write("invoke", args={"id": a}, **base)
        w = self.clerk  # its channels; reads carry no idempotency key
        end = time.monotonic() + WRITE_DEADLINE_S
        while True:
            node = w.node
            try:
                r = w.ledger(node).GetApplication(
                    S.GetApplicationRequest(id=a), timeout=ATTEMPT_S)
                self.hist.write("ok", result={
                    "status": self.L.ApplicationStatus.Name(r.status),
                    "batch_id": r.batch_id}, **base)
                return
            except grpc.RpcError as e:
                code = e.code()
                if code == grpc.StatusCode.UNAVAILABLE:
                    w.reset_channel(node)
                if code not in RETRYABLE:
                    self.hist.write("fail", code=code.name, msg=e.details(),
                                    **base)
                    return
            if time.monotonic() > end:
                self.hist.write("unknown", code=code.name, msg="gave up",
                                **base)
                return
            w.node = self.c.next_node(node)
            time.sleep(0.02)

    def step(self):
        L = self.L
        if self.known and self.rnd.random() < READ_SHARE:
            self.read(self.rnd.choice(self.known))
            return
        if len(self.approved) >= BATCH_EVERY:
            ids, self.approved = self.approved, []
            r = self.op(self.clerk, "CreatePaymentBatch",
                        L.CreatePaymentBatch(program_code=PROGRAM,
                                             transfer_date=20270115,
                                             application_ids=ids),
                        {"program": PROGRAM, "application_ids": ids})
            if r is not None:
                self.batches.append(r.batch.id)
            return
        if self.batches:
            b = self.batches.pop()
            self.op(self.appr, "ConfirmPaymentBatch",
                    L.ConfirmPaymentBatch(id=b), {"id": b})
            return
        choice = self.rnd.random()
        if choice < REFUSED_SHARE and self.done_homes and self.done_apps:
            if self.rnd.random() < 0.5:
                h = self.rnd.choice(self.done_homes)
                self.op(self.clerk, "SubmitApplication",
                        L.SubmitApplication(program_code=PROGRAM,
                                            household_no=h,
                                            channel=L.CHANNEL_COUNTER),
                        {"program": PROGRAM, "household": h,
                         "refusal_expected": True})
            else:
                a = self.rnd.choice(self.done_apps)
                self.op(self.appr, "ApproveApplication",
                        L.ApproveApplication(id=a),
                        {"id": a, "refusal_expected": True})
            return
        if self.submitted and choice < 0.4:
            a = self.submitted.pop(0)
            if self.op(self.appr, "ApproveApplication",
                       L.ApproveApplication(id=a), {"id": a}) is not None:
                self.approved.append(a)
                self.done_apps = (self.done_apps + [a])[-KEEP:]
        elif self.unsubmitted and choice < 0.75:
            h = self.unsubmitted.pop(0)
            r = self.op(self.clerk, "SubmitApplication",
                        L.SubmitApplication(program_code=PROGRAM,
                                            household_no=h,
                                            channel=L.CHANNEL_COUNTER),
                        {"program": PROGRAM, "household": h})
            if r is not None:
                self.submitted.append(r.application.id)
                self.known = (self.known + [r.application.id])[-KEEP:]
                self.done_homes = (self.done_homes + [h])[-KEEP:]
        else:
            self.n_households += 1
            h = "C%d-%d" % (self.k, self.n_households)
            if self.op(self.clerk, "RegisterHousehold",
                       L.RegisterHousehold(household=household(L, h)),
                       {"household": h}) is not None:
                self.unsubmitted.append(h)

    def run(self):
        try:
            while not self.stop.is_set():
                self.step()
        except Exception as e:  # reported by the run as a harness error
            self.crashed = repr(e)
        finally:
            self.clerk.close()
            self.appr.close()


def start(cluster, hist, stop, seed, n=CLIENTS):
    cluster.observer()  # the readers' account, before any fault
    cs = [Client(k, cluster, hist, stop, seed) for k in range(1, n + 1)]
    for c in cs:
        c.start()
    return cs


def join(clients, timeout):
    end = time.monotonic() + timeout
    for c in clients:
        c.join(max(0.1, end - time.monotonic()))
    return [c.name for c in clients if c.is_alive()]
