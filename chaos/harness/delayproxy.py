#!/usr/bin/python3
"""delayproxy: a transparent TCP proxy that delays every byte by a fixed
latency plus seeded jitter, in each direction (docs/chaos.md "Faults:
delay and loss on peer links").  The chaos harness runs it inside one node's
network namespace, where iptables REDIRECT rules steer that node's Raft
connections (outgoing and incoming) to it: this kernel has no netem.

usage: delayproxy.py --port P --delay-ms D [--jitter-ms J] [--seed N]
                     [--mark M] [--upstream HOST:PORT]

  --port P          listen on 0.0.0.0:P (0: any free port)
  --delay-ms D      latency added to each direction, 0..5000
  --jitter-ms J     each chunk's latency is D +- up to J (J <= D); delivery
                    order is kept (a chunk never overtakes an earlier one)
  --seed N          the jitter's seed (default 0)
  --mark M          SO_MARK on the upstream sockets (so the REDIRECT rules
                    can leave the proxy's own connections alone), 1..2^32-1
  --upstream H:P    connect every accepted connection to this loopback
                    address instead of its original destination
                    (SO_ORIGINAL_DST); for tests without iptables

It prints "ready PORT" on stdout once it listens; SIGTERM or SIGINT stop it
(exit 0), closing every connection it carries.  Exit 2: bad arguments."""
import argparse
import asyncio
import ipaddress
import random
import signal
import socket
import struct
import sys

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
DELAY_MS_MAX = 5000   # a chaos fault, not a model of a far-away site
CHUNK_BYTES = 65536


def parse(argv):
    p = argparse.ArgumentParser(prog="delayproxy.py")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--delay-ms", type=int, required=True)
    p.add_argument("--jitter-ms", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mark", type=lambda s: int(s, 0), default=0)
    p.add_argument("--upstream")
    a = p.parse_args(argv)
    if not 0 <= a.port <= 65535:
        p.error("--port must be within 0..65535")
    if not 0 <= a.delay_ms <= DELAY_MS_MAX:
        p.error("--delay-ms must be within 0..%d" % DELAY_MS_MAX)
    if not 0 <= a.jitter_ms <= a.delay_ms:
        p.error("--jitter-ms must be within 0..--delay-ms")
    if not 0 <= a.mark < 2 ** 32:
        p.error("--mark must be within 0..2^32-1")
    if a.upstream is not None:
        host, _, port = a.upstream.rpartition(":")
        try:
            ok = ipaddress.IPv4Address(host).is_loopback and \
                0 < int(port) <= 65535
        except ValueError:
            ok = False
        if not ok:
            p.error("--upstream must be a loopback IPv4 HOST:PORT")
        a.upstream = (host, int(port))
    return a


def original_dst(sock):
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, = struct.unpack_from("!H", raw, 2)
    return socket.inet_ntoa(raw[4:8]), port


class Proxy:
    def __init__(self, a):
        self.a = a
        self.rnd = random.Random(a.seed)
        self.tasks = set()

    def latency(self):
        j = self.a.jitter_ms
        return (self.a.delay_ms + (self.rnd.randint(-j, j) if j else 0)) \
            / 1000.0

    async def pump(self, r, w):
        """Copy r to w, each chunk delivered latency() after it was read,
        in order; EOF is passed on (half-close) after the data before it.
        A reset of r raises here (after the data before it), so that the
        caller closes both connections: the other end must see its peer
        go, not a connection that stays open."""
        loop = asyncio.get_running_loop()
        q = asyncio.Queue()

        async def reader():
            last = 0.0
            while True:
                try:
                    data = await r.read(CHUNK_BYTES)
                except OSError:
                    data = None  # reset: end the connection
                last = max(last, loop.time() + self.latency())
                await q.put((last, data))
                if not data:
                    return

        async def writer():
            while True:
                due, data = await q.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if data is None:
                    raise ConnectionResetError("the other end was reset")
                if not data:
                    if w.can_write_eof():
                        w.write_eof()
                    return
                w.write(data)
                await w.drain()
        rt = asyncio.ensure_future(reader())
        try:
            await writer()
        finally:
            rt.cancel()

    async def handle(self, cr, cw):
        task = asyncio.current_task()
        self.tasks.add(task)
        uw = None
        try:
            dst = self.a.upstream or original_dst(cw.get_extra_info("socket"))
            up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if self.a.mark:
                up.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, self.a.mark)
            up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            up.setblocking(False)
            await asyncio.get_running_loop().sock_connect(up, dst)
            ur, uw = await asyncio.open_connection(sock=up)
            cw.get_extra_info("socket").setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ts = [asyncio.ensure_future(self.pump(cr, uw)),
                  asyncio.ensure_future(self.pump(ur, cw))]
            try:
                await asyncio.wait(ts, return_when=asyncio.FIRST_EXCEPTION)
            finally:
                for t in ts:
                    t.cancel()
                await asyncio.gather(*ts, return_exceptions=True)
        except OSError:
            pass  # a reset or a refused upstream: close both ends
        finally:
            for w in (cw, uw):
                if w is not None:
                    w.close()
            self.tasks.discard(task)

    async def main(self):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, stop.set)
        srv = await asyncio.start_server(self.handle, "0.0.0.0", self.a.port,
                                         reuse_address=True)
        print("ready %d" % srv.sockets[0].getsockname()[1], flush=True)
        await stop.wait()
        srv.close()
        for t in list(self.tasks):
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def main(argv):
    a = parse(argv)
    asyncio.run(Proxy(a).main())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
