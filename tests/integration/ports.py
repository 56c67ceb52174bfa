"""Free loopback ports for tests that start kyufud: shared by cluster.py and
tests/integration/config_test.sh (`python3 ports.py N` prints N ports)."""
import os
import socket
import sys


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_next_port = None


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1, below the kernel's ephemeral
    range.  A node's port must not be one the kernel may hand out as the
    source port of an outgoing connection: while a test has a node down, a
    peer's reconnect could take that port and the node could not listen on
    it again when restarted.  Ports are scanned from an offset derived from
    the PID so that parallel tests rarely probe the same ones; each is
    checked free by binding it."""
    global _next_port
    low = 20000
    high = min(_ephemeral_low(), 65536)
    span = high - low
    if _next_port is None:
        _next_port = low + (os.getpid() * 37) % span
    ports = []
    for _ in range(span):
        p = _next_port
        _next_port = low + (_next_port + 1 - low) % span
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            s.close()
        ports.append(p)
        if len(ports) == n:
            return ports
    raise RuntimeError("no free loopback ports below the ephemeral range")


if __name__ == "__main__":
    print(*free_ports(int(sys.argv[1])))
