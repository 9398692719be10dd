#!/usr/bin/python3
"""The built-in page in a real browser: headless Chromium, driven through its
DevTools protocol (over python3-websockets), loads http://127.0.0.1:PORT/
with the token in the URL fragment, waits until the page says "connected",
then a downlink message and an uplink message are published; the page must
show both, and a screenshot is written. Exit 77 when chromium or
python3-websockets is missing.
"""
import argparse
import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import websockets
except ImportError:
    print("python3-websockets is not installed")
    sys.exit(77)


class DevTools:
    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method, **params):
        i = next(self.ids)
        await self.ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            m = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
            if m.get("id") == i:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]

    async def eval(self, expr):
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r["result"].get("value")

    async def wait_for(self, expr, what, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = await self.eval(expr)
            if v:
                return v
            await asyncio.sleep(0.2)
        raise AssertionError(f"the page never showed {what}; page text: "
                             f"{await self.eval('document.body.innerText')!r}")


def start_chromium(profile):
    chromium = shutil.which("chromium")
    if not chromium:
        print("chromium is not installed")
        sys.exit(77)
    p = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--remote-debugging-port=0", "--remote-allow-origins=*",
         f"--user-data-dir={profile}", "--window-size=1100,700", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    for line in p.stderr:
        m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
        if m:
            return p, int(m.group(1))
        if time.monotonic() > deadline:
            break
    p.kill()
    raise AssertionError("chromium did not open its DevTools port")


async def run(a):
    profile = tempfile.mkdtemp(prefix="es-chromium-")
    browser, port = start_chromium(profile)
    try:
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list",
                                                    timeout=10))
        page = next(t for t in targets if t["type"] == "page")
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=64 << 20) as ws:
            dt = DevTools(ws)
            await dt.call("Page.enable")
            url = f"http://127.0.0.1:{a.ws_port}/#token={a.token}&session=browser-hmi"
            await dt.call("Page.navigate", url=url)
            await dt.wait_for("document.getElementById('conn') && "
                              "document.getElementById('conn').textContent === 'connected'",
                              "connected")
            await dt.wait_for("document.getElementById('node').textContent === 'test-node'",
                              "the status document")
            # Published now, while the page watches: it must appear live.
            down = f"reboot-at-{int(time.time())}"
            for _ in range(50):  # until the agent's broker subscription is in place
                subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(a.broker_port),
                                "-q", "1", "-t", "edgespool/test-node/down/cmd/reboot",
                                "-m", down], check=True, timeout=10)
                shown = await dt.eval(f"document.body.innerText.includes({json.dumps(down)})")
                if shown:
                    break
                await asyncio.sleep(0.3)
            await dt.wait_for(f"document.body.innerText.includes({json.dumps(down)})",
                              "the downlink message")
            subprocess.run([a.edgespool, "publish", "--socket", a.socket, "sensors/temp",
                            '{"celsius":21.5}'], check=True, timeout=10, capture_output=True)
            await dt.wait_for("document.body.innerText.includes('sensors/temp')",
                              "the uplink message")
            await asyncio.sleep(0.3)  # one more status push and paint
            shot = await dt.call("Page.captureScreenshot", format="png")
            with open(a.screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            text = await dt.eval("document.getElementById('messages').innerText")
            print("page shows:", " | ".join(text.split("\n")[:4]))
            print("screenshot:", a.screenshot)
            try:
                await dt.call("Browser.close")
            except Exception:  # noqa: BLE001 - it closes under us
                pass
    finally:
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--ws-port", type=int, required=True)
    p.add_argument("--broker-port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--socket", required=True)
    p.add_argument("--edgespool", required=True)
    p.add_argument("--screenshot", required=True)
    a = p.parse_args()
    try:
        asyncio.run(asyncio.wait_for(run(a), 90))
    except AssertionError as e:
        print("FAIL:", e)
        sys.exit(1)
    print("PASS browser page")
