#!/usr/bin/python3
"""The WebSocket clients of tests/bench/websocket_bench.cc (which starts the
broker and the agent and reads the agent's RSS). One mode per run; every
result is one line "RESULT {json}" on stdout.

  idle     open --sessions sessions (each authenticated and subscribed to a
           downlink filter nothing is published on), print READY, hold them
           until --stop-file appears
  uplink   --sessions sessions subscribed to uplink "bench/#" (0: none, the
           baseline), then `edgespool publish --count N` through the producer
           socket; counts what every session got or was told it lost
  downlink --sessions anonymous sessions subscribed to "down/bench/#" (acking
           every 25), then N messages published centrally (mosquitto_pub -l);
           waits until every session has all N
"""
import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import time

try:
    import websockets
except ImportError:
    print("python3-websockets is not installed")
    sys.exit(77)

A = None


def url():
    return f"ws://127.0.0.1:{A.ws_port}/ws"


async def open_session(sub):
    ws = await websockets.connect(url(), subprotocols=["edgespool.v1", "bearer." + A.token],
                                  max_queue=None, ping_interval=None, close_timeout=1)
    await ws.send(json.dumps({"type": "subscribe", **sub}))
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if m["type"] == "subscribed":
            return ws
        if m["type"] == "error":
            raise RuntimeError(m)


async def open_many(n, sub):
    out = []
    for i in range(0, n, 100):  # batches: the listen backlog is finite
        out += await asyncio.gather(*[open_session(sub) for _ in range(min(100, n - i))])
    return out


def publish_up(count):
    r = subprocess.run([A.edgespool, "publish", "--socket", A.socket, "--count", str(count),
                        "--connections", "4", "--size", "100", "bench/x"],
                       capture_output=True, text=True, timeout=300)
    m = re.search(r"([\d.]+) msg/s", r.stdout)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"publish failed: {r.stdout} {r.stderr}")
    return float(m.group(1))


async def mode_idle():
    sessions = await open_many(A.sessions, {"filters": ["down/idle/#"]})
    print(f"READY {len(sessions)}", flush=True)
    deadline = time.monotonic() + 300
    while not os.path.exists(A.stop_file) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.gather(*[ws.close() for ws in sessions], return_exceptions=True)
    print("RESULT " + json.dumps({"sessions": len(sessions)}), flush=True)


async def drain(ws, expect, counts, i, downlink):
    got = 0
    while got < expect:
        m = json.loads(await ws.recv())
        if m["type"] == "message":
            got += 1
            counts["delivered"] += 1
            counts["last"] = time.monotonic()
            if downlink and got % 25 == 0:
                await ws.send(json.dumps({"type": "ack", "up_to": m["seq"]}))
        elif m["type"] == "dropped":
            got += m["count"]
            counts["dropped"] += m["count"]


async def run_load(downlink):
    sub = {"filters": ["down/bench/#"]} if downlink else {"uplink": ["bench/#"]}
    sessions = await open_many(A.sessions, sub) if A.sessions else []
    counts = {"delivered": 0, "dropped": 0, "last": 0.0}
    tasks = [asyncio.create_task(drain(ws, A.count, counts, i, downlink))
             for i, ws in enumerate(sessions)]
    t0 = time.monotonic()
    rate = None
    if downlink:
        lines = "".join(f"m{i}\n" for i in range(A.count))
        p = await asyncio.create_subprocess_exec(
            "mosquitto_pub", "-h", "127.0.0.1", "-p", str(A.broker_port), "-q", "1",
            "-t", "edgespool/test-node/down/bench/x", "-l", stdin=asyncio.subprocess.PIPE)
        await p.communicate(lines.encode())
    else:
        rate = await asyncio.get_running_loop().run_in_executor(None, publish_up, A.count)
    published = time.monotonic() - t0
    done, pending = await asyncio.wait(tasks, timeout=120) if tasks else (set(), set())
    for t in pending:
        t.cancel()
    end = counts["last"] if counts["last"] else time.monotonic()
    await asyncio.gather(*[ws.close() for ws in sessions], return_exceptions=True)
    print("RESULT " + json.dumps({
        "sessions": len(sessions), "count": A.count, "producer_msgs_per_s": rate,
        "published_s": round(published, 3), "delivered": counts["delivered"],
        "dropped": counts["dropped"], "complete": len(pending) == 0,
        "elapsed_s": round(end - t0, 3),
        "delivered_per_s": round(counts["delivered"] / max(end - t0, 1e-9))}), flush=True)


async def wait_downlink_ready():
    ws = await open_session({"filters": ["down/probe"]})
    try:
        for _ in range(100):
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(A.broker_port), "-q",
                            "1", "-t", "edgespool/test-node/down/probe", "-m", "p"], check=True)
            try:
                m = json.loads(await asyncio.wait_for(ws.recv(), 0.3))
                if m["type"] == "message":
                    return
            except asyncio.TimeoutError:
                pass
        raise RuntimeError("the agent never subscribed")
    finally:
        await ws.close()


async def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if A.mode == "idle":
        await mode_idle()
    elif A.mode == "uplink":
        await run_load(False)
    else:
        await wait_downlink_ready()
        await run_load(True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["idle", "uplink", "downlink"])
    p.add_argument("--ws-port", type=int, required=True)
    p.add_argument("--broker-port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--socket", required=True)
    p.add_argument("--edgespool", required=True)
    p.add_argument("--sessions", type=int, default=100)
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--stop-file", default="")
    A = p.parse_args()
    asyncio.run(main())
