"""Password hashes beyond those that run at once (as many as the cores, 2
to 4: node/auth_work.c) wait in the node's own queue and still come back,
on a three-node cluster at the production hash cost (~0.13 s a hash here):

  - the bootstrap administrator's first sign-in and password change, then
    five sign-ins at once on one connection (the account allows five in
    flight): the leader's kyufu_auth_hashes_queued_total rises (some
    waited), and every one is answered with its own session (a queue that
    never drained would leave them unanswered);
  - five more at once, and the leader stopped (SIGTERM) while they hash or
    wait: each is answered (a session, or UNAVAILABLE: none hangs to its
    deadline), and the leader exits 0 (its stop waited for the hashes).
    Which path answered the queued ones (run and forwarded during the
    hand-over, or refused once the node stopped taking calls) is not
    observed here.

usage: test_auth_queue.py KYUFUD"""
import concurrent.futures
import signal
import sys
import time
import urllib.request

import grpc

import auth as AU
import cluster as C
from ports import free_ports
from prom_text import parse

T = 30  # per call: the sanitizer build on a loaded machine is slow


def queued(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        fam = parse(r.read().decode())
    name = "kyufu_auth_hashes_queued_total"
    return sum(v for _, v in fam[name]["samples"][name])


def main():
    mports = free_ports(3)
    extra = {i: "[node]\nmetrics_listen = 127.0.0.1:%d\n" % mports[i - 1]
             for i in (1, 2, 3)}
    c = C.Cluster(sys.argv[1], weak_hashes=False, extra_conf=extra)
    c.mports = mports
    try:
        run(c)
        c.stop_clean()
    finally:
        c.close()


def run(c):
    S = c.s["service_pb2"]
    G = c.s["service_pb2_grpc"]
    c.start_all()
    leader = c.wait_leader(20)

    def A():
        return G.AuthStub(c.channel(leader))

    r = AU.await_sign_in(A(), S, lambda: S.SignInRequest(
        staff_id=C.ADMIN, password=c.admin_temp), 40)
    assert r.setup_only and r.must_change_password, r
    new_pw = AU.new_password()
    A().ChangePassword(S.ChangePasswordRequest(old_password=c.admin_temp,
                                             new_password=new_pw),
                     metadata=(("authorization", "Bearer " + r.token),),
                     timeout=T)

    port = c.mports[leader - 1]
    before = queued(port)
    stub = A()  # one connection: the five arrive together
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(5) as ex:
        fs = [ex.submit(stub.SignIn, S.SignInRequest(staff_id=C.ADMIN,
                                                     password=new_pw),
                        timeout=T) for _ in range(5)]
        toks = [f.result().token for f in fs]
    took = time.monotonic() - t0
    assert len(set(toks)) == 5 and all(len(t) == 64 for t in toks), toks
    waited = queued(port) - before
    assert waited >= 1, "no hash waited its turn: %d" % waited
    print("auth-queue: five sign-ins at once answered in %.2f s, %d waited"
          % (took, waited))

    # Five more, and the leader stopped while they run or wait.
    codes = []
    with concurrent.futures.ThreadPoolExecutor(5) as ex:
        fs = [ex.submit(stub.SignIn, S.SignInRequest(staff_id=C.ADMIN,
                                                     password=new_pw),
                        timeout=T) for _ in range(5)]
        time.sleep(0.05)
        c.kill(leader, signal.SIGTERM)
        for f in fs:
            try:
                f.result()
                codes.append("OK")
            except grpc.RpcError as e:
                codes.append(e.code().name)
    rc = c.wait_exit(leader, 60)
    print("auth-queue: stopped with five in flight: %s, exit %d"
          % (codes, rc))
    assert rc == 0, (rc, c.logs())
    assert all(x in ("OK", "UNAVAILABLE") for x in codes), codes


if __name__ == "__main__":
    main()
