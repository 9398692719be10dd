#!/usr/bin/python3
"""The WebSocket listener's protocol, auth, resume and limits, against the real
agent and a real mosquitto (started by tests/integration/websocket_test.cc,
which passes their ports). Client: Debian's python3-websockets; the few
cases a well-behaved client cannot produce (no pong, a broken frame) use a raw
socket. Exit 0: every case passed; 77: python3-websockets is missing.

The agent runs with: token_file (TOKEN), allowed_origins = ["http://hmi.local"],
max_sessions = 8, max_frame_bytes = 4096, idle_timeout = 2s.
"""
import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time

try:
    import websockets
except ImportError:
    print("python3-websockets is not installed")
    sys.exit(77)

A = None  # the parsed arguments
DOWN = "edgespool/test-node/down/"


def url():
    return f"ws://127.0.0.1:{A.ws_port}/ws"


def auth():
    return ["edgespool.v1", "bearer." + A.token]


def publish_down(suffix, payload):
    """One QoS 1 message from the central broker to the gateway."""
    args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(A.broker_port), "-q", "1",
            "-t", DOWN + suffix]
    if isinstance(payload, bytes):
        subprocess.run(args + ["-s"], input=payload, check=True, timeout=10)
    else:
        subprocess.run(args + ["-m", payload], check=True, timeout=10)


def publish_up(topic, payload):
    """One producer message through the agent's socket (stored in the journal)."""
    subprocess.run([A.edgespool, "publish", "--socket", A.socket, topic, payload],
                   check=True, timeout=10, capture_output=True)


async def recv_json(ws, timeout=5.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_type(ws, type_, timeout=5.0, **match):
    """The next frame of this type (and fields), skipping status pushes."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {type_} {match} within {timeout}s")
        m = await recv_json(ws, left)
        if m["type"] == type_ and all(m.get(k) == v for k, v in match.items()):
            return m
        if m["type"] == "error" and type_ != "error":
            raise AssertionError(f"unexpected error {m}")


async def expect_close(ws, code, timeout=5.0):
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed as e:
        got = e.rcvd.code if e.rcvd else None
        assert got == code, f"closed with {got} ({e.rcvd and e.rcvd.reason}), wanted {code}"
        return e.rcvd.reason


async def subscribe(ws, **fields):
    await ws.send(json.dumps({"type": "subscribe", **fields}))
    return await recv_type(ws, "subscribed")


async def wait_downlink_ready():
    """Probes until the agent's SUBSCRIBE is in place on the broker."""
    async with websockets.connect(url(), subprotocols=auth()) as ws:
        await subscribe(ws, filters=["down/probe"])
        for _ in range(100):
            publish_down("probe", "probe")
            try:
                m = await recv_type(ws, "message", timeout=0.3)
                await ws.send(json.dumps({"type": "ack", "up_to": m["seq"]}))
                return
            except (AssertionError, asyncio.TimeoutError):
                pass
        raise AssertionError("the agent never subscribed on the broker")


# --- cases --------------------------------------------------------------------------


async def case_auth():
    # Token in Sec-WebSocket-Protocol; the server answers with edgespool.v1.
    async with websockets.connect(url(), subprotocols=auth()) as ws:
        assert ws.subprotocol == "edgespool.v1", ws.subprotocol
        await subscribe(ws, status=True)
        st = await recv_type(ws, "status")
        assert st["status"]["node"] == "test-node", st
    # Token in the first message.
    async with websockets.connect(url(), subprotocols=["edgespool.v1"]) as ws:
        await ws.send(json.dumps({"type": "auth", "token": A.token}))
        await subscribe(ws, status=True)
    # Refusals, each with its close code.
    async with websockets.connect(url(), subprotocols=["edgespool.v1", "bearer.wrong"]) as ws:
        await expect_close(ws, 4401)
    async with websockets.connect(url()) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "wrong"}))
        await expect_close(ws, 4401)
    async with websockets.connect(url()) as ws:
        await ws.send(json.dumps({"type": "subscribe", "status": True}))  # no auth first
        await expect_close(ws, 4401)
    async with websockets.connect(url()) as ws:
        await expect_close(ws, 4401, timeout=6)  # nothing sent within idle_timeout


async def case_origin():
    async with websockets.connect(url(), subprotocols=auth(), origin="http://evil.example") as ws:
        await expect_close(ws, 4403)
    async with websockets.connect(url(), subprotocols=auth(), origin="http://hmi.local") as ws:
        await subscribe(ws, status=True)  # allowed_origins
    same = f"http://127.0.0.1:{A.ws_port}"
    async with websockets.connect(url(), subprotocols=auth(), origin=same) as ws:
        await subscribe(ws, status=True)  # the page's own origin


async def case_messages():
    async with websockets.connect(url(), subprotocols=auth()) as ws:
        sub = await subscribe(ws, filters=["down/msg/#"], uplink=["sensors/#"])
        assert sub["session"] == "" and sub["resumed"] is False, sub
        publish_down("msg/text", "hello hmi")
        m = await recv_type(ws, "message", source="downlink")
        assert m["topic"] == "down/msg/text" and m["payload"] == "hello hmi", m
        assert m["broker_topic"] == DOWN + "msg/text", m
        await ws.send(json.dumps({"type": "ack", "seq": m["seq"]}))
        publish_down("msg/bin", b"\xff\x00\xfe")
        m = await recv_type(ws, "message", source="downlink")
        assert base64.b64decode(m["payload_b64"]) == b"\xff\x00\xfe", m
        await ws.send(json.dumps({"type": "ack", "up_to": m["seq"]}))
        # Acking what is not in flight is an error frame; the session stays.
        await ws.send(json.dumps({"type": "ack", "seq": m["seq"] + 1000}))
        err = await recv_type(ws, "error")
        assert err["code"] == "bad_request", err
        # Uplink traffic as it is stored (and not what the filter leaves out).
        publish_up("other/x", "not for us")
        publish_up("sensors/temp", '{"c":21.5}')
        m = await recv_type(ws, "message", source="uplink")
        assert m["topic"] == "sensors/temp" and m["payload"] == '{"c":21.5}', m
        assert m["seq"] > 0, m
        # Bad subscribe: an error frame, not a close.
        await ws.send(json.dumps({"type": "subscribe", "filters": ["a/#/b"]}))
        m = await recv_type(ws, "error")
        await ws.send(json.dumps({"type": "unsubscribe"}))
        await recv_type(ws, "unsubscribed")


async def case_resume():
    """A durable session resumes after a reconnect from its last acked position."""
    async with websockets.connect(url(), subprotocols=auth()) as ws:
        sub = await subscribe(ws, session="hmi-resume", filters=["down/resume/#"])
        assert sub["resumed"] is False, sub
        for i in range(3):
            publish_down("resume/r", f"r{i}")
        got = [await recv_type(ws, "message", source="downlink") for _ in range(3)]
        assert [m["payload"] for m in got] == ["r0", "r1", "r2"], got
        assert all(m["session"] == "hmi-resume" for m in got)
        await ws.send(json.dumps({"type": "ack", "up_to": got[1]["seq"]}))  # r2 stays unacked
        await asyncio.sleep(0.3)
    for i in range(3, 5):
        publish_down("resume/r", f"r{i}")  # while the session is away
    async with websockets.connect(url(), subprotocols=auth()) as ws:
        sub = await subscribe(ws, session="hmi-resume", filters=["down/resume/#"])
        assert sub["resumed"] is True and sub["position"] == got[1]["seq"], sub
        again = [await recv_type(ws, "message", source="downlink") for _ in range(3)]
        assert [m["payload"] for m in again] == ["r2", "r3", "r4"], again
        await ws.send(json.dumps({"type": "ack", "up_to": again[-1]["seq"]}))
        # The same durable session on a second connection is busy.
        async with websockets.connect(url(), subprotocols=auth()) as other:
            await other.send(json.dumps({"type": "subscribe", "session": "hmi-resume",
                                         "filters": ["down/resume/#"]}))
            err = await recv_type(other, "error")
            assert err["code"] == "busy", err
        await ws.send(json.dumps({"type": "unsubscribe", "end": True}))
        await recv_type(ws, "unsubscribed")


class UpPublisher:
    """`edgespool publish -l` fed one line at a time from a thread: producer
    messages keep arriving while a WebSocket session disconnects and resumes.
    Bounded: `count` messages, `gap` seconds apart."""

    def __init__(self, topic, prefix, count, gap):
        import threading
        self.proc = subprocess.Popen([A.edgespool, "publish", "--socket", A.socket, "-l", topic],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.payloads = [f"{prefix}{i}" for i in range(count)]
        self.thread = threading.Thread(target=self._run, args=(gap,), daemon=True)
        self.thread.start()

    def _run(self, gap):
        for p in self.payloads:
            self.proc.stdin.write((p + "\n").encode())
            self.proc.stdin.flush()
            time.sleep(gap)
        self.proc.stdin.close()

    def finish(self):
        self.thread.join(30)
        assert self.proc.wait(30) == 0, "publish -l failed"


async def recv_uplink(ws, timeout=5.0):
    """The next uplink message, and any dropped frames before it."""
    dropped = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise asyncio.TimeoutError()
        m = await recv_json(ws, left)
        if m["type"] == "dropped":
            dropped.append(m)
        elif m["type"] == "message" and m["source"] == "uplink":
            if dropped:
                raise AssertionError(f"dropped before {m['payload']}: {dropped}")
            return m
        elif m["type"] == "error":
            raise AssertionError(f"unexpected error {m}")


async def case_uplink_resume():
    """A named session's uplink resumes after a reconnect from its last acked
    seq, under producer publishes that go on meanwhile: every message once, in
    order, across the switch from journal reads to the live tap; at most
    `window` unacked in flight."""
    window = 5
    sub_fields = dict(session="up-resume", uplink=["up/resume/#"], window=window)
    async with websockets.connect(url(), subprotocols=auth()) as ws:
        sub = await subscribe(ws, **sub_fields)
        assert sub.get("uplink_resumed") is False, sub
        pub = UpPublisher("up/resume/t", "u", 300, 0.01)
        # The window: `window` messages, then nothing until an ack.
        first = [await recv_uplink(ws) for _ in range(window)]
        try:
            extra = await recv_uplink(ws, timeout=0.7)
            raise AssertionError(f"a message past the window: {extra['payload']}")
        except asyncio.TimeoutError:
            pass
        await ws.send(json.dumps({"type": "ack", "source": "uplink", "up_to": first[-1]["seq"]}))
        got = list(first)
        while len(got) < 80:
            m = await recv_uplink(ws)
            got.append(m)
            await ws.send(json.dumps({"type": "ack", "source": "uplink", "seq": m["seq"]}))
        # Two more delivered and never acked: they come again after the resume.
        got.append(await recv_uplink(ws))
        got.append(await recv_uplink(ws))
        acked = got[:-2]
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)  # publishes go on while the session is away
    async with websockets.connect(url(), subprotocols=auth()) as ws:
        sub = await subscribe(ws, **sub_fields)
        assert sub["uplink_resumed"] is True, sub
        assert sub["uplink_position"] == acked[-1]["seq"], (sub, acked[-1])
        # The same uplink session on another connection is busy.
        async with websockets.connect(url(), subprotocols=auth()) as other:
            await other.send(json.dumps({"type": "subscribe", **sub_fields}))
            err = await recv_type(other, "error")
            assert err["code"] == "busy", err
        rest = []
        while len(acked) + len(rest) < len(pub.payloads):
            m = await recv_uplink(ws)
            rest.append(m)
            await ws.send(json.dumps({"type": "ack", "source": "uplink", "up_to": m["seq"]}))
        pub.finish()
        try:
            extra = await recv_uplink(ws, timeout=0.5)
            raise AssertionError(f"a message more than published: {extra['payload']}")
        except asyncio.TimeoutError:
            pass
        payloads = [m["payload"] for m in acked + rest]
        assert payloads == pub.payloads, (
            f"lost {sorted(set(pub.payloads) - set(payloads))[:10]}, "
            f"duplicated {[p for p in set(payloads) if payloads.count(p) > 1][:10]}")
        seqs = [m["seq"] for m in acked + rest]
        assert seqs == sorted(set(seqs)), "seqs not strictly increasing"
        await ws.send(json.dumps({"type": "unsubscribe", "end": True}))
        await recv_type(ws, "unsubscribed")
    # Ended: the next subscribe starts anew.
    async with websockets.connect(url(), subprotocols=auth()) as ws:
        sub = await subscribe(ws, **sub_fields)
        assert sub["uplink_resumed"] is False, sub
        await ws.send(json.dumps({"type": "unsubscribe", "end": True}))
        await recv_type(ws, "unsubscribed")


async def case_uplink_retention():
    """(An agent with store.sent_retention = 0s.) Rows uploaded while the
    session was away are gone from the journal: the resume says how many it
    missed (a dropped frame, counted), then delivers what is still there."""
    fields = dict(session="up-gone", uplink=["up/gone/#"])
    async with websockets.connect(url(), subprotocols=auth()) as ws:
        await subscribe(ws, **fields)
        publish_up("up/gone/t", "g0")
        m = await recv_uplink(ws)
        assert m["payload"] == "g0", m
        await ws.send(json.dumps({"type": "ack", "source": "uplink", "seq": m["seq"]}))
        await asyncio.sleep(0.2)
    for i in range(1, 6):
        publish_up("up/gone/t", f"g{i}")  # uploaded and deleted at once
    await asyncio.sleep(1.5)
    async with websockets.connect(url(), subprotocols=auth()) as ws:
        sub = await subscribe(ws, **fields)
        assert sub["uplink_resumed"] is True and sub["uplink_position"] == m["seq"], sub
        d = await recv_type(ws, "dropped")
        assert d["count"] == 5 and d["total"] == 5, d
        publish_up("up/gone/t", "g6")
        n = await recv_uplink(ws)
        assert n["payload"] == "g6" and n["seq"] == m["seq"] + 6, n
        await ws.send(json.dumps({"type": "ack", "source": "uplink", "seq": n["seq"]}))
        await ws.send(json.dumps({"type": "unsubscribe", "end": True}))
        await recv_type(ws, "unsubscribed")


async def case_window():
    """At most `window` unacked messages in flight; the rest after acks."""
    async with websockets.connect(url(), subprotocols=auth()) as ws:
        await subscribe(ws, filters=["down/win/#"], window=2)
        for i in range(5):
            publish_down("win/w", f"w{i}")
        first = [await recv_type(ws, "message", source="downlink") for _ in range(2)]
        try:
            extra = await recv_type(ws, "message", timeout=1.0)
            raise AssertionError(f"a third message past the window: {extra}")
        except asyncio.TimeoutError:
            pass
        except AssertionError as e:
            if "past the window" in str(e):
                raise
        await ws.send(json.dumps({"type": "ack", "up_to": first[1]["seq"]}))
        rest = [await recv_type(ws, "message", source="downlink") for _ in range(2)]
        await ws.send(json.dumps({"type": "ack", "up_to": rest[1]["seq"]}))
        last = await recv_type(ws, "message", source="downlink")
        assert [m["payload"] for m in first + rest + [last]] == [f"w{i}" for i in range(5)]


async def case_garbage_and_limits():
    """Garbage closes that session only; limits have their codes."""
    async with websockets.connect(url(), subprotocols=auth()) as healthy:
        await subscribe(healthy, filters=["down/alive/#"])
        for frame, code in [("not json", 4400), ('{"type":"launch"}', 4400),
                            ("[1,2,3]", 4400), (b"\x00\x01binary", 1003),
                            ('{"type":"ack","seq":"x' + "y" * 5000 + '"}', 1009)]:
            async with websockets.connect(url(), subprotocols=auth()) as ws:
                await ws.send(frame)
                await expect_close(ws, code)
        for code, raw in [(1002, bytes([0xF1, 0x80, 1, 2, 3, 4])),    # RSV bits set
                          (1002, bytes([0x83, 0x80, 1, 2, 3, 4])),    # reserved opcode
                          (1007, bytes([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28]))]:  # bad UTF-8
            got = raw_close_code(send=raw)
            assert got == code, f"raw frame {raw.hex()}: closed {got}, wanted {code}"
        # max_sessions = 8: the healthy one plus 7 more; the next is refused.
        extra = [await websockets.connect(url(), subprotocols=auth()) for _ in range(7)]
        try:
            async with websockets.connect(url(), subprotocols=auth()) as ws:
                await expect_close(ws, 4429)
        finally:
            for ws in extra:
                await ws.close()
        # The healthy session never noticed.
        publish_down("alive/x", "still here")
        m = await recv_type(healthy, "message", source="downlink")
        assert m["payload"] == "still here", m


def raw_connect():
    s = socket.create_connection(("127.0.0.1", A.ws_port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{A.ws_port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: edgespool.v1, "
               f"bearer.{A.token}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, "closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def raw_frames(s, timeout):
    """Yields (opcode, payload) of server frames until the socket closes."""
    s.settimeout(timeout)
    buf = b""
    while True:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            return
        if not chunk:
            return
        buf += chunk
        while len(buf) >= 2:
            n = buf[1] & 0x7F
            off = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, off = int.from_bytes(buf[2:4], "big"), 4
            if len(buf) < off + n:
                break
            yield buf[0] & 0x0F, buf[off:off + n]
            buf = buf[off + n:]


def raw_close_code(send=b"", wait=8.0):
    s = raw_connect()
    if send:
        s.sendall(send)
    try:
        for op, payload in raw_frames(s, wait):
            if op == 8:
                return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
    finally:
        s.close()
    return None


async def case_idle():
    """A client that sends nothing, not even a pong, is closed 4408."""
    s = raw_connect()
    t0 = time.monotonic()
    pinged, code = False, None
    try:
        for op, payload in raw_frames(s, 6.0):
            if op == 9:
                pinged = True  # a ping at half the timeout, left unanswered
            if op == 8:
                code = int.from_bytes(payload[:2], "big")
                break
    finally:
        s.close()
    took = time.monotonic() - t0
    assert pinged, "no ping before the idle close"
    assert code == 4408, f"closed {code}"
    assert 1.5 < took < 5.0, f"idle close after {took:.1f}s (idle_timeout 2s)"
    # A client that answers pings (python-websockets does) stays open.
    async with websockets.connect(url(), subprotocols=auth(), ping_interval=None) as ws:
        await subscribe(ws, filters=["down/idle/#"])
        await asyncio.sleep(4.5)
        publish_down("idle/x", "awake")
        m = await recv_type(ws, "message", source="downlink")
        assert m["payload"] == "awake"


async def case_shutdown():
    """SIGTERM: open sessions get 1001 (run alone: it stops the agent)."""
    async with websockets.connect(url(), subprotocols=auth()) as ws:
        await subscribe(ws, session="hmi-stop", filters=["down/stop/#"])
        publish_down("stop/x", "before stop")
        m = await recv_type(ws, "message", source="downlink")
        await ws.send(json.dumps({"type": "ack", "seq": m["seq"]}))
        await asyncio.sleep(0.2)
        os.kill(A.agent_pid, signal.SIGTERM)
        reason = await expect_close(ws, 1001, timeout=10)
        assert "stopping" in reason, reason
    # Until the agent has exited (a zombie for the test to reap): a second
    # SIGTERM from the test while it stops would mean "stop at once".
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{A.agent_pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except FileNotFoundError:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the agent did not exit after SIGTERM")


CASES = [case_auth, case_origin, case_messages, case_resume, case_window,
         case_uplink_resume, case_garbage_and_limits, case_idle, case_shutdown,
         case_uplink_retention]


async def main():
    await wait_downlink_ready()
    failed = 0
    for case in CASES:
        # case_shutdown stops the agent, case_uplink_retention needs an agent
        # without retention: only when asked for by name.
        selected = A.only or [c.__name__ for c in CASES
                              if c not in (case_shutdown, case_uplink_retention)]
        if case.__name__ not in selected:
            continue
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(case(), 60)
            print(f"PASS {case.__name__} ({time.monotonic() - t0:.1f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 - report every case
            failed += 1
            print(f"FAIL {case.__name__}: {type(e).__name__}: {e}", flush=True)
    return failed


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--ws-port", type=int, required=True)
    p.add_argument("--broker-port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--socket", required=True)
    p.add_argument("--edgespool", required=True)
    p.add_argument("--only", nargs="*")
    p.add_argument("--agent-pid", type=int, default=0)
    A = p.parse_args()
    sys.exit(1 if asyncio.run(main()) else 0)
