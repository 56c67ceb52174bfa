#!/usr/bin/python3
"""chaos/harness/delayproxy.py, the user-space delay of the delay-peer
fault (docs/chaos.md "Faults: delay and loss on peer links"), on loopback
without namespaces or root (a few seconds): the latency it adds is really
there in each direction (and rttprobe, the fault's check, measures it), bytes arrive complete and in order under jitter,
a half-close passes through, SIGTERM stops it with every connection
closed, and bad arguments are refused (exit 2) before it listens."""
import contextlib
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROXY = os.path.join(HERE, "harness", "delayproxy.py")
sys.path.insert(0, HERE)
from harness import delayproxy, rttprobe  # noqa: E402


def echo_server():
    """A loopback echo server: echoes until EOF, then half-closes."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)

    def serve(c):
        with c:
            while True:
                b = c.recv(65536)
                if not b:
                    c.shutdown(socket.SHUT_WR)
                    return
                c.sendall(b)

    def accept():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    return ls


def start(upstream, *args):
    p = subprocess.Popen([sys.executable, PROXY, "--port", "0", "--upstream",
                          "127.0.0.1:%d" % upstream] + list(args),
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    assert line[:1] == ["ready"], line
    return p, int(line[1])


def stop(p):
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=10)
    assert rc == 0, rc


def recv_all(c):
    out = bytearray()
    while True:
        b = c.recv(65536)
        if not b:
            return bytes(out)
        out += b


def test_latency(up):
    p, port = start(up, "--delay-ms", "150")
    try:
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(3):
                t0 = time.monotonic()
                c.sendall(b"x")
                assert c.recv(1) == b"x"
                rtt = time.monotonic() - t0
                # 150 ms each way; the upper bound only guards against a
                # proxy that queues behind something (the machine is loaded)
                assert 0.300 <= rtt < 3.0, rtt
    finally:
        stop(p)


def test_rttprobe(up):
    """rttprobe (the delay-peer fault's check) sees the proxy's round
    trip: a ClientHello out, the first byte back (the echo server answers
    it with itself); bad arguments exit 2."""
    p, port = start(up, "--delay-ms", "150")
    try:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = rttprobe.main(["127.0.0.1", str(port), "2"])
        rtts = json.loads(out.getvalue())["rtt_ms"]
        assert rc == 0 and len(rtts) == 2 and min(rtts) >= 300, (rc, rtts)
    finally:
        stop(p)
    for args in (["127.0.0.1", "0", "1"], ["127.0.0.1", "1", "0"],
                 ["127.0.0.1", "1", "21"], ["localhost", "1", "1"],
                 ["127.0.0.1", "x", "1"], ["127.0.0.1", "1"]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert rttprobe.main(args) == 2, args
        assert "usage:" in err.getvalue(), args


def test_order_and_half_close(up):
    p, port = start(up, "--delay-ms", "60", "--jitter-ms", "55",
                    "--seed", "7")
    try:
        with socket.create_connection(("127.0.0.1", port)) as c:
            sent = b"".join(bytes([k % 251]) * (1 + k % 977)
                            for k in range(600))
            for k in range(0, len(sent), 4096):
                c.sendall(sent[k:k + 4096])
            c.shutdown(socket.SHUT_WR)  # the echo server sees EOF after all
            got = recv_all(c)
            assert got == sent, (len(got), len(sent))
    finally:
        stop(p)


def test_sigterm_closes(up):
    p, port = start(up, "--delay-ms", "10")
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"y")
    assert c.recv(1) == b"y"
    t0 = time.monotonic()
    stop(p)
    assert time.monotonic() - t0 < 5
    c.settimeout(5)
    try:
        assert c.recv(1) == b""  # closed: EOF
    except ConnectionResetError:
        pass                      # or reset
    c.close()


def test_reset_closes_other_end():
    """A reset on one side closes the other: a peer behind the proxy must
    see its connection go, not keep a half-dead link."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    p, port = start(ls.getsockname()[1], "--delay-ms", "20")
    try:
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"z")
        ls.settimeout(10)
        s, _ = ls.accept()
        s.settimeout(10)
        assert s.recv(1) == b"z"
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        c.close()  # RST
        try:
            assert s.recv(1) == b""
        except ConnectionResetError:
            pass
        s.close()
    finally:
        stop(p)
        ls.close()


def test_bad_arguments():
    for args in (["--delay-ms", "100"],                      # no --port
                 ["--port", "0"],                            # no delay
                 ["--port", "0", "--delay-ms", "-1"],
                 ["--port", "0", "--delay-ms", "5001"],
                 ["--port", "0", "--delay-ms", "abc"],
                 ["--port", "70000", "--delay-ms", "1"],
                 ["--port", "0", "--delay-ms", "10", "--jitter-ms", "11"],
                 ["--port", "0", "--delay-ms", "10", "--jitter-ms", "-1"],
                 ["--port", "0", "--delay-ms", "1", "--mark", "-1"],
                 ["--port", "0", "--delay-ms", "1", "--mark", "0x1ffffffff"],
                 ["--port", "0", "--delay-ms", "1", "--upstream",
                  "localhost:80"],
                 ["--port", "0", "--delay-ms", "1", "--upstream",
                  "127.0.0.1:0"],
                 ["--port", "0", "--delay-ms", "1", "--upstream",
                  "127.0.0.1:x"],
                 ["--port", "0", "--delay-ms", "1", "--upstream", "::1:80"]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                delayproxy.parse(args)
                rc = 0
            except SystemExit as e:
                rc = e.code
        assert rc == 2, (args, rc)
        assert "error:" in err.getvalue(), (args, err.getvalue())
    # and the program itself: exit 2 before it listens
    r = subprocess.run([sys.executable, PROXY, "--port", "0", "--delay-ms",
                        "-5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout)
    assert "--delay-ms must be within" in r.stderr, r.stderr


def main():
    ls = echo_server()
    up = ls.getsockname()[1]
    test_bad_arguments()
    test_latency(up)
    test_rttprobe(up)
    test_order_and_half_close(up)
    test_sigterm_closes(up)
    test_reset_closes_other_end()
    ls.close()
    print("delayproxy: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
