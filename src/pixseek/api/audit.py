"""The append-only write log: one JSON line per write request (who, what, when, answer)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

WRITE_LOG = ".pixseek-writes.log"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class WriteLog:
    def __init__(self, root: Path) -> None:
        self.path = root / WRITE_LOG
        self._lock = threading.Lock()

    def append(self, key_id: str, method: str, path: str, status: int) -> None:
        entry = {"at": time.time(), "key_id": key_id, "method": method, "path": path}
        line = json.dumps({**entry, "status": status}) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_APPEND: every line lands at the end, whoever else has the file open
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(descriptor, line.encode())
            finally:
                os.close(descriptor)

    def read(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]


class LogWrites:
    """Log every write request with the key that made it and the status it got, refused
    ones too. The authorization dependency puts the key, and whether the route writes
    (searches and judgements do not), in the request's state."""

    def __init__(self, app: Any, log: WriteLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        status = 500

        async def noted(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            state = scope.get("state", {})
            if state.get("write", True):
                self.log.append(
                    str(state.get("key_id", "")), scope["method"], scope["path"], status
                )
