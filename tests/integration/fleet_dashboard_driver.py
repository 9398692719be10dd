#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol for fleet_dashboard_test.

Why a driver and not `chromium --screenshot --virtual-time-budget`: the page
keeps an EventSource open, and virtual time does not run out while a fetch is
pending, so the one-shot modes never return. This script loads the page once,
watches the live DOM, and never reloads it, so what it sees after the test
stops an agent came through the event stream.

Steps (each bounded by --timeout seconds):
  1. every node in --nodes shows as "ok"; screenshot to --shot1;
  2. write --ready-file (the test then stops the agent --stop);
  3. the --stop row turns offline or silent (the page not reloaded, the
     stream still live); screenshot to --shot2;
prints one JSON line with what it saw; exit 0 when all held, 1 otherwise.
With --min-rows N instead of --nodes/--stop (fleet_bench --screenshot): waits
for N rows, takes --shot1 and ends.

Standard library only (a minimal RFC 6455 client), so any python3 runs it.
"""
import argparse
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request


class DevTools:
    """One WebSocket to a page target; call() sends a command, waits its reply."""

    def __init__(self, ws_url):
        rest = ws_url[len("ws://"):]
        hostport, path = rest.split("/", 1)
        host, port = hostport.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("devtools closed during the handshake")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError("devtools refused the upgrade: %r" % head[:200])
        self.next_id = 0

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise RuntimeError("devtools closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _recv_message(self):
        data = b""
        while True:
            b0, b1 = self._read(2)
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(length)
            if mask:
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            opcode = b0 & 0x0F
            if opcode == 8:
                raise RuntimeError("devtools sent close")
            if opcode in (9, 10):  # ping/pong: Chrome does not ping; ignore
                continue
            data += payload
            if b0 & 0x80:
                return json.loads(data)

    def call(self, method, **params):
        self.next_id += 1
        msg = json.dumps({"id": self.next_id, "method": method, "params": params}).encode()
        header = bytes([0x81])
        if len(msg) < 126:
            header += bytes([0x80 | len(msg)])
        elif len(msg) < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(msg))
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", len(msg))
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(msg)))
        while True:
            reply = self._recv_message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return r.get("result", {}).get("value")

    def screenshot(self, path):
        png = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(png))


ROWS_JS = ("JSON.stringify({rows: Array.from(document.querySelectorAll('#rows tr'))"
           ".map(r => [r.dataset.node, r.dataset.state]),"
           " link: document.getElementById('link').textContent,"
           " origin: performance.timeOrigin})")


def wait_for(dt, predicate, timeout):
    deadline = time.time() + timeout
    seen = None
    while time.time() < deadline:
        seen = json.loads(dt.eval(ROWS_JS) or "null")
        if seen and predicate(seen):
            return True, seen
        time.sleep(0.2)
    return False, seen


def wait_all_ok(dt, a, nodes, result):
    """Step 1: every named node ok (and at least --min-rows rows), stream live."""
    def all_ok(s):
        states = dict(s["rows"])
        return (s["link"] == "live" and all(states.get(n) == "ok" for n in nodes) and
                len(s["rows"]) >= a.min_rows)
    ok, seen = wait_for(dt, all_ok, a.timeout)
    result["before"] = {"rows": seen["rows"][:20], "count": len(seen["rows"])} if seen else None
    if not ok:
        raise RuntimeError("not every node showed ok")
    time.sleep(0.5)  # the render runs at most 200 ms after an update
    return seen


def watch_stop(dt, a, origin, result):
    """Steps 2 and 3: signal the test, then see --stop go offline, live."""
    with open(a.ready_file, "w") as f:
        f.write("ready\n")

    def stopped(s):
        return dict(s["rows"]).get(a.stop) in ("offline", "silent")
    ok, seen = wait_for(dt, stopped, a.timeout)
    result["after"] = seen
    if not ok:
        raise RuntimeError(f"{a.stop} did not turn offline or silent")
    time.sleep(0.5)
    dt.screenshot(a.shot2)
    if seen["origin"] != origin:
        raise RuntimeError("the page was reloaded: the change did not come live")
    if seen["rows"][0][0] != a.stop:
        raise RuntimeError("the stopped node is not the first row (worst first)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chromium", default="chromium")
    ap.add_argument("--url", required=True)
    ap.add_argument("--nodes", default="")
    ap.add_argument("--stop", default="")
    ap.add_argument("--min-rows", type=int, default=0)
    ap.add_argument("--shot1", required=True)
    ap.add_argument("--shot2", default="")
    ap.add_argument("--ready-file", default="")
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    nodes = a.nodes.split(",") if a.nodes else []
    profile = tempfile.mkdtemp(prefix="fleet-chromium-")
    browser = subprocess.Popen(
        [a.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
         f"--user-data-dir={profile}", "--window-size=1280,800", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = {"ok": False}
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.time() + a.timeout
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if time.time() > deadline or browser.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(open(port_file).read().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(t for t in targets if t.get("type") == "page")
        dt = DevTools(page["webSocketDebuggerUrl"])
        dt.call("Page.enable")
        dt.call("Page.navigate", url=a.url)

        seen = wait_all_ok(dt, a, nodes, result)
        dt.screenshot(a.shot1)
        if a.stop:
            watch_stop(dt, a, seen["origin"], result)
        result["ok"] = True
    except Exception as e:  # reported in the JSON line; the test prints it
        result["error"] = str(e)
    finally:
        browser.kill()
        browser.wait()
        shutil.rmtree(profile, ignore_errors=True)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
