#!/usr/bin/env python3
"""A stock gRPC client (Debian's python3-grpcio) against kyufu's server:
proves the wire format is plain gRPC.  argv: port certdir.  Exit 0 when
every expectation holds, 1 otherwise, 77 when grpcio is missing."""
import sys

try:
    import grpc
except ImportError:
    print("python3-grpcio not installed")
    sys.exit(77)

port, d = sys.argv[1], sys.argv[2]
read = lambda f: open(f"{d}/{f}", "rb").read()
creds = grpc.ssl_channel_credentials(read("ca.pem"), read("client.key"), read("client.pem"))
ch = grpc.secure_channel(f"127.0.0.1:{port}", creds,
                         options=[("grpc.ssl_target_name_override", "localhost")])
echo = ch.unary_unary("/kyufu.v1.Ledger/Echo")
fail = ch.unary_unary("/kyufu.v1.Ledger/Fail")
nope = ch.unary_unary("/kyufu.v1.Ledger/Nope")
health = ch.unary_unary("/grpc.health.v1.Health/Check")
hold = ch.unary_unary("/kyufu.v1.Ledger/Hold")

ok = True
def expect(cond, what):
    global ok
    if not cond:
        ok = False
        print("FAILED:", what)

r = echo(b"\x01\x02hello", timeout=10, metadata=[("x-kyufu-actor", "py")])
expect(r == b"\x01\x02hello", f"echo returned {r!r}")
r = echo(b"", timeout=10)
expect(r == b"", "empty echo")
for fn, code, text in [(fail, grpc.StatusCode.FAILED_PRECONDITION, "café 100% done\n"),
                       (nope, grpc.StatusCode.UNIMPLEMENTED, None)]:
    try:
        fn(b"x", timeout=10)
        expect(False, "call should fail")
    except grpc.RpcError as e:
        expect(e.code() == code, f"code {e.code()}")
        if text is not None:
            expect(e.details() == text, f"details {e.details()!r}")
# Trailer metadata, as a stock client reads it: call.trailing_metadata()
# after an OK answer, e.trailing_metadata() on an error (Trailers-Only).
hint = ch.unary_unary("/kyufu.v1.Ledger/Hint")
r, call = hint.with_call(b"ok", timeout=10)
expect(r == b"ok", f"hint returned {r!r}")
md = dict(call.trailing_metadata() or ())
expect(md.get("kyufu-leader") == "127.0.0.1:8003", f"OK trailers {call.trailing_metadata()!r}")
try:
    hint(b"no", timeout=10)
    expect(False, "hint 'no' should fail")
except grpc.RpcError as e:
    expect(e.code() == grpc.StatusCode.UNAVAILABLE, f"hint code {e.code()}")
    md = dict(e.trailing_metadata() or ())
    expect(md.get("kyufu-leader") == "127.0.0.1:8003",
           f"error trailers {e.trailing_metadata()!r}")
r = health(b"", timeout=10)
expect(r == b"\x08\x01", f"health {r!r}")
try:
    echo(b"x" * (4 * 1024 * 1024 + 1), timeout=10)
    expect(False, "oversized should fail")
except grpc.RpcError as e:
    expect(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, f"oversized code {e.code()}")
r = echo(b"after", timeout=10)
expect(r == b"after", "serves after an error")
try:
    hold(b"x", timeout=0.2)
    expect(False, "hold should time out")
except grpc.RpcError as e:
    expect(e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, f"deadline code {e.code()}")
ch.close()
sys.exit(0 if ok else 1)
