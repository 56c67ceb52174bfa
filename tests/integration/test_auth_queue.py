"""Password hashes beyond KYUFU_NODE_AUTH_RUN_MAX wait in the node's own
queue (node/auth_work.c, work_pool.h) and still come back: on a
three-node cluster at the production hash cost (~0.13 s a hash here), the
bootstrap administrator's first sign-in and password change, then four
sign-ins at once on one connection (the account allows five in flight):
two hash while two wait, and each is answered with its own session within
the call's deadline.  A queue that never drained would leave two of them
unanswered.

usage: test_auth_queue.py KYUFUD"""
import concurrent.futures
import sys
import time

import grpc

import auth as AU
import cluster as C

T = 30  # per call: the sanitizer build on a loaded machine is slow


def main():
    c = C.Cluster(sys.argv[1], weak_hashes=False)
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

    # The bootstrap account appears once the identity command set runs.
    end = time.monotonic() + 40
    while True:
        try:
            r = A().SignIn(S.SignInRequest(staff_id=C.ADMIN,
                                           password=c.admin_temp), timeout=T)
            break
        except grpc.RpcError as e:
            if time.monotonic() > end or e.code() not in (
                    grpc.StatusCode.UNAUTHENTICATED,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED):
                raise AssertionError("%s %s\n%s" % (e.code(), e.details(),
                                                    c.logs()))
            time.sleep(0.3)
    assert r.setup_only and r.must_change_password, r
    new_pw = AU.new_password()
    A().ChangePassword(S.ChangePasswordRequest(old_password=c.admin_temp,
                                             new_password=new_pw),
                     metadata=(("authorization", "Bearer " + r.token),),
                     timeout=T)

    stub = A()  # one connection: the four arrive together
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        fs = [ex.submit(stub.SignIn, S.SignInRequest(staff_id=C.ADMIN,
                                                     password=new_pw),
                        timeout=T) for _ in range(4)]
        toks = [f.result().token for f in fs]
    took = time.monotonic() - t0
    assert len(set(toks)) == 4 and all(len(t) == 64 for t in toks), toks
    print("auth-queue: four sign-ins at once answered in %.2f s" % took)


if __name__ == "__main__":
    main()
