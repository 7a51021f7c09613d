"""Headless Chromium for the end-to-end tests, driven over DevTools.

``chromium --dump-dom`` is enough for plain HTML pages. The dashboard's
Bokeh pages draw into shadow roots once their websocket has delivered the
document, in real time, which ``--virtual-time-budget`` does not wait for;
:func:`render` therefore opens the page through the DevTools protocol,
polls until a condition holds and takes the screenshot then.

The browser stays inside the lab: no host name resolves (the lab is reached
by address), so neither CDN links nor Chromium's own services go out.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
#: Text of the page, shadow roots included (Bokeh 3 renders into them).
PAGE_TEXT = """
(() => {
  const parts = [];
  const walk = (node) => {
    if (node.shadowRoot) walk(node.shadowRoot);
    if (node.nodeType === Node.TEXT_NODE) parts.push(node.textContent);
    for (const child of node.childNodes) walk(child);
  };
  walk(document.documentElement);
  return parts.join(" ");
})()
"""
#: Canvases drawn, shadow roots included: Bokeh plots are canvases.
CANVASES = """
(() => {
  let count = 0;
  const walk = (node) => {
    if (node.shadowRoot) walk(node.shadowRoot);
    if (node.nodeName === "CANVAS" && node.width > 0) count += 1;
    for (const child of node.childNodes) walk(child);
  };
  walk(document.documentElement);
  return count;
})()
"""


def browser_path() -> str | None:
    return shutil.which("chromium")


def flags_for(url: str) -> list[str]:
    parts = urlsplit(url)
    flags = [*FLAGS, f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {parts.hostname}"]
    if parts.scheme == "https":
        # The dashboard's certificate comes from the cluster's own CA, which
        # the browser does not know; test_tls checks it against that CA.
        flags.append("--ignore-certificate-errors")
    return flags


def dump_dom(url: str) -> str:
    """The page's DOM after its scripts ran (light DOM only)."""
    browser = browser_path()
    assert browser is not None
    done = subprocess.run(
        [browser, *flags_for(url), "--virtual-time-budget=10000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


@dataclass
class Rendered:
    """What the page showed once ready: its text, canvases and a screenshot."""

    text: str
    canvases: int
    png: bytes


def render(
    url: str, ready: str, *, timeout: float = 60, size: tuple[int, int] = (1280, 800)
) -> Rendered:
    """Open ``url``; once the JS expression ``ready`` is true, capture it."""
    browser = browser_path()
    assert browser is not None
    with (
        tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile,
        subprocess.Popen(
            [
                browser,
                *flags_for(url),
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                f"--window-size={size[0]},{size[1]}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # Its own process group: Debian's chromium is a script that
            # starts the browser, whose helpers must all stop with it.
            start_new_session=True,
        ) as process,
    ):
        try:
            port = _devtools_port(process, timeout)
            return asyncio.run(_render(port, url, ready, timeout))
        finally:
            os.killpg(process.pid, signal.SIGKILL)


def _devtools_port(process: subprocess.Popen[str], timeout: float) -> int:
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if found:
            return int(found.group(1))
        if not line and process.poll() is not None:
            break
    raise AssertionError("chromium did not open its DevTools port")


class _Session:
    def __init__(self, socket: WebSocketClientConnection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        await self.socket.write_message(
            json.dumps({"id": ident, "method": method, "params": params})
        )
        while True:
            message = await self.socket.read_message()
            assert message is not None, "chromium closed the DevTools connection"
            reply = json.loads(message)
            if reply.get("id") == ident:
                assert "error" not in reply, reply["error"]
                result: dict[str, Any] = reply["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        reply = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True
        )
        return reply["result"].get("value")


async def _render(port: int, url: str, ready: str, timeout: float) -> Rendered:
    request = HTTPRequest(
        f"http://127.0.0.1:{port}/json/new?{url}", method="PUT", body=b""
    )
    target = json.loads((await AsyncHTTPClient().fetch(request)).body)
    socket = await websocket_connect(target["webSocketDebuggerUrl"])
    session = _Session(socket)
    deadline = time.monotonic() + timeout
    while not await session.evaluate(ready):
        assert time.monotonic() < deadline, f"{url} never became ready: {ready}"
        await asyncio.sleep(0.5)
    await asyncio.sleep(1)  # let the last frame paint
    shot = await session.call("Page.captureScreenshot", format="png")
    rendered = Rendered(
        text=await session.evaluate(PAGE_TEXT),
        canvases=int(await session.evaluate(CANVASES)),
        png=base64.b64decode(shot["data"]),
    )
    socket.close()
    return rendered
