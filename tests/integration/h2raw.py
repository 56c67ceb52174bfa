"""A hand-driven gRPC-over-HTTP/2 client (Python ssl + the h2 library) for
tests that must misbehave in ways grpcio cannot: connect from a chosen
loopback source address, open streams and never finish them, trickle
bytes, hold bodies half sent, watch the server's flow-control credit.
It speaks correct HTTP/2 (h2 enforces the protocol, flow control
included); only the pace and the completeness of requests are abusive.

One Conn is used by one thread.  Run with Debian's /usr/bin/python3
(python3-h2)."""
import socket
import ssl
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions


def host_port(addr):
    h, p = addr.rsplit(":", 1)
    return h, int(p)


def tcp(src, dst, timeout=10.0):
    """A TCP connection to dst ("host:port") from source address src."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(host_port(dst))
    return s


def tls_context(c, cert=None, key=None):
    """TLS client context trusting the cluster's CA, with a client
    certificate (the cluster's test client unless given), ALPN h2."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(c.ca)
    ctx.load_cert_chain(cert or c.client_cert, key or c.client_key)
    ctx.set_alpn_protocols(["h2"])
    return ctx


def grpc_frame(payload, announced=None):
    """A gRPC length-prefixed message; announced overrides the length."""
    n = len(payload) if announced is None else announced
    return b"\x00" + struct.pack(">I", n) + payload


class Stream:
    def __init__(self, sid):
        self.id = sid
        self.opened_at = time.monotonic()
        self.headers = None
        self.trailers = None
        self.data = b""
        self.ended_at = None  # END_STREAM from the server
        self.reset = None     # RST_STREAM error code from the server
        self.sent = 0         # DATA payload bytes we sent

    def _field(self, name):
        for k, v in (self.trailers or []) + (self.headers or []):
            if k == name:
                return v
        return None

    def status(self):
        """grpc-status (int) once answered, else None."""
        v = self._field("grpc-status")
        return None if v is None else int(v)

    def message(self):
        return self._field("grpc-message") or ""

    def done(self):
        return self.ended_at is not None or self.reset is not None


class Conn:
    def __init__(self, c, src, dst, cert=None, key=None, token=None):
        """token: a session token every stream of this connection carries
        (`authorization: Bearer`), or None for none."""
        self.token = token
        raw = tcp(src, dst)
        self.sock = tls_context(c, cert, key).wrap_socket(
            raw, server_hostname="127.0.0.1")
        assert self.sock.selected_alpn_protocol() == "h2"
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8"))
        self.h2.initiate_connection()
        self.authority = dst
        self.streams = {}
        self.settings_seen = False
        self.credited = 0     # connection-level WINDOW_UPDATE bytes received
        self.goaway = None
        self.closed = False
        self.flush()

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            # pump() leaves a short read timeout; a write waits longer for
            # a server that reads slowly (a loaded machine).
            self.sock.settimeout(30.0)
            self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def open(self, path, grpc_timeout=None):
        """Send a request's HEADERS (no END_STREAM); returns the Stream."""
        sid = self.h2.get_next_available_stream_id()
        hdrs = [(":method", "POST"), (":scheme", "https"), (":path", path),
                (":authority", self.authority),
                ("content-type", "application/grpc"), ("te", "trailers")]
        if grpc_timeout is not None:
            hdrs.append(("grpc-timeout", grpc_timeout))
        if self.token is not None:
            hdrs.append(("authorization", "Bearer " + self.token))
        self.h2.send_headers(sid, hdrs)
        st = self.streams[sid] = Stream(sid)
        self.flush()
        return st

    def window(self, st):
        """DATA bytes flow control lets us send on st now."""
        if st.done():
            return 0
        try:
            return self.h2.local_flow_control_window(st.id)
        except h2.exceptions.StreamClosedError:
            return 0

    def send(self, st, data, end=False):
        """Send as much of data as flow control allows now, in frames of at
        most the peer's frame size; END_STREAM only if all of it went.
        Returns the bytes sent."""
        sent = 0
        while sent < len(data):
            n = min(len(data) - sent, self.window(st),
                    self.h2.max_outbound_frame_size)
            if n <= 0:
                break
            last = end and sent + n == len(data)
            self.h2.send_data(st.id, data[sent:sent + n], end_stream=last)
            sent += n
        if end and len(data) == 0 and not st.done():
            self.h2.end_stream(st.id)
        st.sent += sent
        self.flush()
        return sent

    def _event(self, ev):
        now = time.monotonic()
        st = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            self.settings_seen = True
        elif isinstance(ev, h2.events.WindowUpdated):
            if ev.stream_id == 0:
                self.credited += ev.delta
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev.error_code
        elif st is None:
            return
        elif isinstance(ev, h2.events.ResponseReceived):
            st.headers = ev.headers
        elif isinstance(ev, h2.events.TrailersReceived):
            st.trailers = ev.headers
        elif isinstance(ev, h2.events.DataReceived):
            st.data += ev.data
            self.h2.acknowledge_received_data(ev.flow_controlled_length,
                                              ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            st.ended_at = now
        elif isinstance(ev, h2.events.StreamReset):
            st.reset = ev.error_code
            if st.ended_at is None:
                st.ended_at = now

    def pump(self, seconds, until=None):
        """Read and handle frames for up to `seconds`, or until until()
        holds.  Returns False once the server closed the connection."""
        end = time.monotonic() + seconds
        while not self.closed:
            if until is not None and until():
                break
            left = end - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(min(left, 0.5))
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except (OSError, ssl.SSLError):
                data = b""
            if not data:
                self.closed = True
                break
            for ev in self.h2.receive_data(data):
                self._event(ev)
            self.flush()
        return not self.closed

    def call(self, path, payload, timeout_s=10.0):
        """A complete unary call; returns its Stream (status(), data)."""
        st = self.open(path)
        sent = self.send(st, grpc_frame(payload), end=True)
        assert sent == len(payload) + 5, "no flow-control window for a call"
        self.pump(timeout_s, until=st.done)
        return st
