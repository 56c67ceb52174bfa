"""Per-object linearizability of a chaos history (docs/chaos.md "Checker",
"Linearizability per household").

The object is a household of the chaos program: its registration, its
applications, and the parts of the payment-batch operations and the reads
that touch those applications.  For each household, check() searches for
an order of its operations that

- respects real time: an operation that completed (ok / fail) before
  another was invoked comes first; an `unknown` one has no end, so it may
  take effect at any point after its invocation, or never;
- the ledger's state machine accepts (model below): an `ok` write is one
  the model allows, with the answer it gave; a `fail` with a code that
  depends on the state (ALREADY_EXISTS, FAILED_PRECONDITION, NOT_FOUND) is
  one the model refuses with that code, and it changes nothing; an `ok`
  read (GetApplication) returns the model's state at its point, so a stale
  read after an acknowledged write has no place;
- ends in the household's final state (after the final read phase).

A batch operation touches several households; each sees its own part
(the per-object projection), so the check is per object as the issue asks
and does not prove the cross-object order of a batch.  A batch refusal
may come from another household's application, so a failed batch is a
no-op anywhere in a household's order.

The search is depth-first over the operations that may come next, with a
memo of (operations placed, model state) seen (Wing & Gong with Lowe's
cache); STATES_MAX and OPS_MAX bound it per household, and a household
whose search hits a bound is reported as undecided (a violation: the
checker does not pass what it could not check)."""
import collections

INF = float("inf")
# Model states visited per household before the search gives up.  A
# household sees a handful of writes and reads (a few dozen at most), so a
# real search visits tens of states; the bound only stops a pathological
# history from hanging the checker.
STATES_MAX = 200000
# Operations per household the depth-first search takes (its recursion
# depth; Python's default limit is 1000).  One client drives a household,
# so a run gives it a few writes and a few reads.
OPS_MAX = 400
STATE_CODES = ("ALREADY_EXISTS", "FAILED_PRECONDITION", "NOT_FOUND")
WRITES = ("RegisterHousehold", "SubmitApplication", "ApproveApplication",
          "CreatePaymentBatch", "ConfirmPaymentBatch")
READS = ("GetApplication",)
LIVE = ("APP_RECEIVED", "APP_APPROVED", "APP_PAID")


class Op:
    __slots__ = ("key", "name", "out", "inv", "end", "args", "result",
                 "code", "apps", "batch")

    def __init__(self, key, o):
        inv, end = o["invoke"], o["end"]
        self.key = key
        self.name = inv["op"]
        self.out = end["ev"] if end is not None else "unknown"
        self.inv = inv["t"]
        self.end = end["t"] if self.out != "unknown" else INF
        self.args = inv["args"]
        self.result = end.get("result", {}) if end is not None else {}
        self.code = end.get("code") if end is not None else None
        self.apps = ()     # the application ids of this household it touches
        self.batch = None  # batch key (the creating op's key) it names


# ----------------------------------------------------------------- model
# State: (registered, apps) with apps a sorted tuple of (id, status, batch);
# id None for an application made by a submit of unknown outcome (its id is
# bound by the final state), batch None or the key of the op that made it.

def _refuse(code):
    return ("refuse", code)


def step(state, op):
    """The model's answer to op in state: ("ok", new_state, result) or
    ("refuse", code).  result is what an ok answer must have said."""
    reg, apps = state
    byid = {a[0]: a for a in apps}
    n = op.name
    if n == "RegisterHousehold":
        if reg:
            return _refuse("ALREADY_EXISTS")
        return ("ok", (True, apps), None)
    if n == "SubmitApplication":
        if not reg:
            return _refuse("NOT_FOUND")
        if any(a[1] in LIVE for a in apps):
            return _refuse("ALREADY_EXISTS")
        new = (op.result.get("application") if op.out == "ok" else None,
               "APP_RECEIVED", None)
        return ("ok", (reg, _sorted(apps + (new,))), None)
    if n == "ApproveApplication":
        a = byid.get(op.args["id"])
        if a is None:
            return _refuse("NOT_FOUND")
        if a[1] != "APP_RECEIVED":
            return _refuse("FAILED_PRECONDITION")
        return ("ok", (reg, _replace(apps, a, (a[0], "APP_APPROVED",
                                                a[2]))), None)
    if n == "CreatePaymentBatch":
        new = apps
        for i in op.apps:
            a = byid.get(i)
            if a is None:
                return _refuse("NOT_FOUND")
            if a[1] != "APP_APPROVED" or a[2] is not None:
                return _refuse("FAILED_PRECONDITION")
            new = _replace(new, a, (a[0], a[1], op.key))
        return ("ok", (reg, new), None)
    if n == "ConfirmPaymentBatch":
        new = apps
        for i in op.apps:
            a = byid.get(i)
            if a is None or a[2] != op.batch:
                return _refuse("NOT_FOUND")  # not our batch: cannot be
            if a[1] != "APP_APPROVED":
                return _refuse("FAILED_PRECONDITION")
            new = _replace(new, a, (a[0], "APP_PAID", a[2]))
        return ("ok", (reg, new), None)
    if n == "GetApplication":
        a = byid.get(op.args["id"])
        if a is None:
            return _refuse("NOT_FOUND")
        return ("ok", state, (a[1], a[2]))
    raise ValueError("no model for %s" % n)


def _sorted(apps):
    return tuple(sorted(apps, key=lambda a: (a[0] is None, a[0] or 0,
                                              repr(a))))


def _replace(apps, old, new):
    return _sorted(tuple(new if a == old else a for a in apps))


def place(state, op):
    """The states op may leave behind when it takes effect in state: a list
    (empty: op cannot take effect here)."""
    r = step(state, op)
    if op.out == "unknown":
        return [r[1]] if r[0] == "ok" else [state]
    if op.out == "fail":
        if op.name in ("CreatePaymentBatch",) or \
                op.code not in STATE_CODES:
            return [state]  # refused for a reason outside this object
        return [state] if r == _refuse(op.code) else []
    if r[0] != "ok":
        return []
    if op.name in READS and r[2] != op.result["seen"]:
        return []
    return [r[1]]


def matches(state, want):
    """The model state equals the final one; an application of unknown id
    takes any final application left over."""
    reg, apps = state
    if reg != want[0] or len(apps) != len(want[1]):
        return False
    left = list(want[1])
    for a in apps:
        hit = next((w for w in left if (a[0] is None or w[0] == a[0]) and
                    w[1:] == a[1:]), None)
        if hit is None:
            return False
        left.remove(hit)
    return True


# ---------------------------------------------------------------- search
def linearize(ops, want):
    """(True, order) or (False, longest order found) for one object."""
    ops = sorted(ops, key=lambda o: o.inv)
    if len(ops) > OPS_MAX:
        raise OverflowError
    definite = sum(1 for o in ops if o.out != "unknown")
    seen = set()
    best = []
    budget = [STATES_MAX]

    def go(done, state, order, placed_definite):
        if len(order) > len(best):
            best[:] = order
        if placed_definite == definite and matches(state, want):
            return True
        memo = (done, state)
        if memo in seen:
            return False
        seen.add(memo)
        budget[0] -= 1
        if budget[0] < 0:
            raise OverflowError
        # An op may come next if no other op still to place ended before
        # it was invoked.
        first_end = min((o.end for i, o in enumerate(ops)
                         if not done >> i & 1), default=INF)
        for i, o in enumerate(ops):
            if done >> i & 1 or o.inv > first_end:
                continue
            for nxt in place(state, o):
                order.append(o)
                if go(done | 1 << i, nxt, order,
                      placed_definite + (o.out != "unknown")):
                    return True
                order.pop()
        return False

    return go(0, (False, ()), [], 0), best


# ------------------------------------------------------------ projection
def objects(ops_by_key, final):
    """{household: [Op]} of the chaos clients' operations, and the final
    state per household; plus the operations that name an application or
    batch that no household holds (reported by check())."""
    apps_final = [a for a in final["applications"]
                  if a["program_code"] == "CHAOS"]
    home_of = {a["id"]: a["household_no"] for a in apps_final}
    ops = [Op(k, o) for k, o in ops_by_key.items()
           if o["invoke"]["op"] in WRITES + READS]
    for o in ops:
        if o.name == "SubmitApplication" and o.out == "ok":
            home_of.setdefault(o.result.get("application"),
                               o.args["household"])
    creates = {}
    batch_key = {}
    for o in ops:
        if o.name == "CreatePaymentBatch":
            creates[tuple(o.args["application_ids"])] = o
            if o.out == "ok":
                batch_key[o.result.get("batch")] = o.key
    by_key = {o.key: o for o in ops}
    for b in final["batches"]:
        c = creates.get(tuple(b["application_ids"]))
        if c is not None:
            batch_key.setdefault(b["id"], c.key)
    per = collections.defaultdict(list)
    orphans = []
    for o in ops:
        if o.name in ("RegisterHousehold", "SubmitApplication"):
            per[o.args["household"]].append(o)
            continue
        if o.name in ("ApproveApplication", "GetApplication"):
            ids = [o.args["id"]]
        elif o.name == "CreatePaymentBatch":
            ids = o.args["application_ids"]
        else:
            o.batch = batch_key.get(o.args["id"])
            c = by_key.get(o.batch)
            ids = c.args["application_ids"] if c is not None else []
        if o.name == "GetApplication" and o.out == "ok":
            r = o.result
            o.result = dict(r, seen=(r["status"], batch_key.get(
                r["batch_id"], ("batch", r["batch_id"]))
                if r["batch_id"] else None))
        homes = collections.defaultdict(list)
        for i in ids:
            if i in home_of:
                homes[home_of[i]].append(i)
        if o.out == "ok" and (not ids or any(i not in home_of
                                             for i in ids)):
            orphans.append(o)
        for h, mine in homes.items():
            part = _part(o, tuple(mine))
            per[h].append(part)
    want = {}
    regs = set(final["households"])
    # Grouped once: scanning every application for each household was
    # quadratic (172 of 196 s of a 360 s soak run's check, 42k households).
    apps_of = collections.defaultdict(list)
    for a in apps_final:
        apps_of[a["household_no"]].append(a)
    for h in per:
        want[h] = (h in regs, _sorted(tuple(
            (a["id"], a["status"], batch_key.get(
                a["batch_id"], ("batch", a["batch_id"]))
             if a["batch_id"] else None)
            for a in apps_of.get(h, ()))))
    return per, want, orphans


def _part(o, apps):
    p = Op.__new__(Op)
    for s in Op.__slots__:
        setattr(p, s, getattr(o, s))
    p.apps = apps
    return p


def check(ops_by_key, final, bad):
    """Reports each household without a linearization through
    bad(what, *op_keys); returns the number of households checked."""
    per, want, orphans = objects(ops_by_key, final)
    for o in orphans:
        bad("%s %s/%d acknowledged on an application or batch that no "
            "submit or create made" % ((o.name,) + o.key), o.key)
    for h in sorted(per):
        ops = [o for o in per[h] if not (
            o.name in READS and (o.out == "unknown" or
                                 (o.out == "fail" and
                                  o.code != "NOT_FOUND")))]
        try:
            ok, best = linearize(ops, want[h])
        except OverflowError:
            bad("household %s: linearizability search gave up (more than "
                "%d operations or %d states: undecided)"
                % (h, OPS_MAX, STATES_MAX),
                *[o.key for o in ops])
            continue
        if not ok:
            rest = [o for o in sorted(ops, key=lambda o: o.inv)
                    if o not in best]
            bad("household %s: no order of its %d operations respects real "
                "time, the ledger's rules and the final state %s; longest "
                "order found: %s; cannot follow: %s" % (
                    h, len(ops), _show(want[h]),
                    [_name(o) for o in best], [_name(o) for o in rest]),
                *[o.key for o in sorted(ops, key=lambda o: o.inv)])
    return len(per)


def _name(o):
    return "%s/%d %s %s" % (o.key[0], o.key[1], o.name, o.out)


def _show(state):
    return {"registered": state[0],
            "applications": [list(a[:2]) for a in state[1]]}
