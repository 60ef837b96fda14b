"""Scoped API keys, stored hashed under the server's root.

A key has a role (``search``: read and search; ``write``: also add and remove images;
``admin``: everything) and optionally the collections it may touch. Only a salted
SHA-256 HMAC of each key's secret is stored; a presented key is found by its id and
checked in constant time. ``pixseek serve --api-key KEY`` is one more admin key, kept
in memory only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock

from pixseek.collection.atomic import write_atomic
from pixseek.collection.workspace import check_name
from pixseek.core.errors import InvalidInputError, NotFoundError, StorageError

Role = Literal["search", "write", "admin"]
ROLES: tuple[Role, ...] = ("search", "write", "admin")  # each role may do what those before it do
KEYS_FILE = ".pixseek-keys.json"
PREFIX = "pxk"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a key's id, its role and its collections (None: all of them)."""

    key_id: str
    role: Role = "admin"
    collections: tuple[str, ...] | None = None

    def may(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def covers(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections


@dataclass(frozen=True, slots=True)
class StoredKey:
    id: str
    name: str
    role: Role
    collections: tuple[str, ...] | None
    created: float
    salt: str = field(repr=False)
    digest: str = field(repr=False)
    revoked: float | None = None

    def principal(self) -> Principal:
        return Principal(self.id, self.role, self.collections)

    def public(self) -> dict[str, Any]:
        """What ``keys list`` shows: never the salt or the digest."""
        shown = asdict(self)
        del shown["salt"], shown["digest"]
        shown["collections"] = list(self.collections) if self.collections is not None else None
        return shown


def _digest(salt: str, secret: str) -> str:
    return hmac.new(bytes.fromhex(salt), secret.encode(), hashlib.sha256).hexdigest()


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise InvalidInputError(f"unknown role {role!r}: choose from {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


class KeyStore:
    """The keys of one server root. Every read checks the file, so a key created or
    revoked with ``pixseek keys`` takes effect on a running server at its next request."""

    def __init__(self, root: Path) -> None:
        self.path = root / KEYS_FILE
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._keys: dict[str, StoredKey] = {}

    def _load(self) -> dict[str, StoredKey]:
        with self._lock:
            try:
                stat = self.path.stat()
                version: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_ino)
            except FileNotFoundError:
                version = None
            if version != self._seen:
                self._keys = self._read() if version is not None else {}
                self._seen = version
            return self._keys

    def _read(self) -> dict[str, StoredKey]:
        try:
            rows = json.loads(self.path.read_text())["keys"]
            keys = {}
            for row in rows:
                listed = row.get("collections")
                row["collections"] = tuple(listed) if listed is not None else None
                keys[row["id"]] = StoredKey(**row)
            return keys
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"cannot read the API keys in {self.path}: {exc}") from exc

    def _write(self, keys: dict[str, StoredKey]) -> None:
        rows = []
        for key in keys.values():
            row = asdict(key)
            row["collections"] = list(key.collections) if key.collections is not None else None
            rows.append(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps({"keys": rows}, indent=2).encode(), durable=True)
        os.chmod(self.path, 0o600)

    def _change(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path) + ".lock")

    def create(
        self, name: str, role: str, collections: Sequence[str] | None = None
    ) -> tuple[StoredKey, str]:
        """A new key: returns it and the token to give its holder (shown only once)."""
        chosen = check_role(role)
        key_id, secret, salt = (
            secrets.token_hex(6),
            secrets.token_urlsafe(32),
            secrets.token_hex(16),
        )
        # a name no collection can have would be a scope that covers nothing, unsaid
        scope = tuple(dict.fromkeys(check_name(c) for c in collections)) if collections else None
        key = StoredKey(key_id, name, chosen, scope, time.time(), salt, _digest(salt, secret))
        with self._change():
            keys = dict(self._read()) if self.path.exists() else {}
            keys[key_id] = key
            self._write(keys)
        return key, f"{PREFIX}_{key_id}_{secret}"

    def list(self) -> list[StoredKey]:
        return sorted(self._load().values(), key=lambda k: k.created)

    def revoke(self, key_id: str) -> StoredKey:
        with self._change():
            keys = dict(self._read()) if self.path.exists() else {}
            if key_id not in keys:
                raise NotFoundError(f"no API key with id {key_id!r}")
            key = keys[key_id] = replace(keys[key_id], revoked=keys[key_id].revoked or time.time())
            self._write(keys)
        return key

    def active(self) -> bool:
        """Whether any key is in force (the server then asks every request for one)."""
        return any(key.revoked is None for key in self._load().values())

    def verify(self, token: str) -> Principal | None:
        """The principal of a presented token, or None when it is unknown or revoked."""
        prefix, _, rest = token.partition("_")
        key_id, _, secret = rest.partition("_")
        key = self._load().get(key_id) if prefix == PREFIX else None
        if key is None:
            # the same work as a real check, so a wrong id takes as long as a wrong secret
            hmac.compare_digest(_digest("00" * 16, secret), "0" * 64)
            return None
        good = hmac.compare_digest(_digest(key.salt, secret), key.digest)
        return key.principal() if good and key.revoked is None else None
