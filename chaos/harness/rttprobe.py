#!/usr/bin/python3
"""rttprobe: the round trip to a TLS port, as the delay-peer fault checks
it (docs/chaos.md "Faults: delay and loss on peer links"): connect, send a
TLS ClientHello, time until the first byte of the answer (one round trip
whatever the server answers).  Run inside a node's namespace, its
connections take the same path as the node's own peer links.

usage: rttprobe.py ADDR PORT TRIES
Prints {"rtt_ms": [..]} (one per try that was answered); exit 1 if none
was, 2 on bad arguments."""
import ipaddress
import json
import socket
import ssl
import sys
import time

TIMEOUT_S = 5.0
TRIES_MAX = 20


def client_hello():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    try:
        ctx.wrap_bio(inc, out).do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def once(addr, port, hello):
    with socket.create_connection((addr, port), timeout=TIMEOUT_S) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.monotonic()
        s.sendall(hello)
        if not s.recv(1):
            return None
        return time.monotonic() - t0


def main(argv):
    try:
        addr, port, tries = argv
        ok = ipaddress.IPv4Address(addr).is_loopback
        port, tries = int(port), int(tries)
        ok = ok and 0 < port <= 65535 and 0 < tries <= TRIES_MAX
    except ValueError:
        ok = False
    if not ok:
        print("usage: rttprobe.py LOOPBACK-ADDR PORT TRIES(1..%d)"
              % TRIES_MAX, file=sys.stderr)
        return 2
    hello = client_hello()
    rtts = []
    for _ in range(tries):
        try:
            r = once(addr, port, hello)
        except OSError:
            r = None
        if r is not None:
            rtts.append(round(1000 * r, 1))
    print(json.dumps({"rtt_ms": rtts}), flush=True)
    return 0 if rtts else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
