"""Ledger setup shared by the integration tests: the ID administrator (the
bootstrap account, signed in on first use) creates a clerk and an approver,
who sign in like a front end (first sign-in: new password, TOTP), and the
approver opens a program; written with idempotency keys through
cluster.Writer, each call carrying its actor's token."""
import threading
import time

import grpc

WINDOW_END_MS = 4102444800000  # 2100-01-01


def must(result, what):
    code, resp = result
    assert code == grpc.StatusCode.OK, "%s: %s %s" % (what, code, resp)
    return resp


class Ledger:
    def __init__(self, cluster, client_id="it"):
        self.c = cluster
        self.L = cluster.s["ledger_pb2"]
        self.admin = cluster_writer(cluster, "admin", client_id + "-admin")
        self.clerk = cluster_writer(cluster, "clerk1", client_id + "-clerk")
        self.approver = cluster_writer(cluster, "approver1",
                                       client_id + "-approver")

    def setup(self, program="P2026", budget=10 ** 12, unit=50000):
        L = self.L
        for sid, name, role in (("clerk1", "Clerk", L.ROLE_CLERK),
                                ("approver1", "Approver", L.ROLE_APPROVER)):
            self.c.account(sid, [role], name, writer=self.admin)
        must(self.approver.call("CreateProgram", L.CreateProgram(
            code=program, name="Winter support", fiscal_year=2026,
            unit_amount=unit, budget=budget, window_start_ms=1,
            window_end_ms=WINDOW_END_MS)), "program")
        must(self.approver.call("OpenProgram", L.OpenProgram(code=program)),
             "open program")
        self.c.observer()  # the tests' reads (Cluster.ledger) carry its token

    def household(self, no):
        L = self.L
        return L.Household(
            household_no=no, head_name="Yamada Taro",
            member_names=["Yamada Hanako"], address="1-2-3 Chuo, Kyufu City",
            bank=L.BankAccount(bank_code="0001", branch_code="001",
                               account_type="ordinary", account_no="1234567",
                               holder_kana="ヤマダ タロウ"))


def pages(list_call, S, field, page_size=1000, token=""):
    """Every item of a paged List call (`field` of each page, in order),
    following next_page_token to the end.  list_call: a stub's List
    method (e.g. c.ledger(node).ListAudit); S: service_pb2; token: the
    page token to start from (ListAudit's: the seq to read after)."""
    while True:
        page = list_call(S.ListRequest(page_size=page_size,
                                       page_token=token), timeout=10)
        yield from getattr(page, field)
        token = page.next_page_token
        if not token:
            return


def audit_by_client(c, node, client_ids):
    """{client_id: ({sequence: count}, {sequences with outcome OK})} of the
    audit records of the given clients, read from node (linearizable)."""
    out = {cid: ({}, set()) for cid in client_ids}
    for r in pages(c.ledger(node).ListAudit, c.s["service_pb2"], "records"):
        if r.client_id in out:
            counts, ok = out[r.client_id]
            counts[r.client_seq] = counts.get(r.client_seq, 0) + 1
            if r.outcome == 0:
                ok.add(r.client_seq)
    return out


def audit_keys(c, node, client_id):
    """{sequence: count} of the audit records of client_id, and the
    sequences whose outcome was OK."""
    return audit_by_client(c, node, [client_id])[client_id]


def cluster_writer(cluster, actor, client_id):
    from cluster import Writer
    return Writer(cluster, actor, client_id)


def audit_writes(c, node):
    """The audit records of commands (writes, decisions, the cluster's own
    records), without the operation log's records of calls that changed
    nothing (cluster.ACCESS_COMMANDS: reads, refusals, sign-ins)."""
    from cluster import ACCESS_COMMANDS
    return [r for r in pages(c.ledger(node).ListAudit, c.s["service_pb2"],
                             "records")
            if r.command not in ACCESS_COMMANDS]


class Pacer(threading.Thread):
    """Writes a household every 10 ms (one at a time, retried across nodes
    with the same key) and records when each was acknowledged."""

    def __init__(self, c, led, prefix):
        super().__init__(daemon=True)
        self.c, self.led, self.prefix = c, led, prefix
        from cluster import Writer
        self.w = Writer(c, "clerk1", "pacer-" + prefix, own_channels=True)
        self.acks = []  # (monotonic time, household_no)
        self.failed = []
        self.stop = threading.Event()

    def run(self):
        L = self.c.s["ledger_pb2"]
        k = 0
        nxt = time.monotonic()
        while not self.stop.is_set():
            no = "%s-%d" % (self.prefix, k)
            k += 1
            code, resp = self.w.call("RegisterHousehold", L.RegisterHousehold(
                household=self.led.household(no)), deadline_s=20.0,
                attempt_s=1.0)
            if code == grpc.StatusCode.OK:
                self.acks.append((time.monotonic(), no))
            else:
                self.failed.append((no, code, resp))
            nxt += 0.010
            time.sleep(max(0.0, nxt - time.monotonic()))
        self.w.close()

    def gap_ms(self, t0, t1):
        ts = [t for t, _ in self.acks if t0 <= t <= t1]
        if len(ts) < 2:
            return float("inf")
        return max(b - a for a, b in zip(ts, ts[1:])) * 1000
