"""Headless Chromium driven over the DevTools protocol: navigate, evaluate, click, screenshot.

What ``--dump-dom`` cannot do: act on the page as an operator would. The protocol is Chromium's own (JSON over a
WebSocket, spoken here with aiohttp, a dependency already), so no driver package is needed.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp


class Browser:
    def __init__(self, executable: str, profile: Path) -> None:
        self.executable, self.profile = executable, profile
        self.process: subprocess.Popen | None = None
        self._session: aiohttp.ClientSession | None = None
        self._socket: Any = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Browser:
        self.process = subprocess.Popen(
            [
                self.executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--window-size=1100,1400",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port = await self._devtools_port(timeout_s=30)
        self._session = aiohttp.ClientSession()
        async with self._session.get(f"http://127.0.0.1:{port}/json/list") as answer:
            [page] = [t for t in await answer.json() if t["type"] == "page"][:1]
        self._socket = await self._session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._session is not None:
            await self._session.close()
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)

    async def _devtools_port(self, timeout_s: float) -> int:
        """Chromium writes the port it chose to DevToolsActivePort in the profile folder."""
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while not (marker.exists() and marker.read_text().strip()):
            assert self.process is not None and self.process.poll() is None, "Chromium exited at start"
            assert time.monotonic() < deadline, f"Chromium did not open its DevTools port within {timeout_s}s"
            await asyncio.sleep(0.1)  # polling a file Chromium writes once
        return int(marker.read_text().split()[0])

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        await self._socket.send_str(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads((await asyncio.wait_for(self._socket.receive(), 30)).data)
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def navigate(self, url: str) -> None:
        """Opens ``url`` and returns once its document has loaded."""
        await self.call("Page.navigate", url=url)
        await self.wait_for(
            f"location.href === {json.dumps(url)} && document.readyState === 'complete'", what=f"{url} loaded"
        )

    async def wait_for(self, expression: str, timeout_s: float = 30.0, what: str = "") -> Any:
        """Until ``expression`` is truthy in the page; its value. A failure quotes the page's text."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() >= deadline:
                shown = await self.evaluate("document.body ? document.body.innerText.slice(0, 3000) : ''")
                raise AssertionError(
                    f"the page never showed {what or expression} within {timeout_s}s; it shows:\n{shown}"
                )
            await asyncio.sleep(0.2)  # polling the page: it refreshes on its own timer

    async def screenshot(self, path: Path) -> Path:
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
