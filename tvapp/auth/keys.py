"""The API key store: `DATA/keys.json`, mode 0600, shared by `serve`, `token` and `keys`.

Each key is an id (public, also the JWT `kid` header and `iss` claim) and a secret (the HS256
signing key and the HTTP Basic password of server-side calls). Keys are never deleted, only
revoked, so that a revoked id cannot be re-used by accident. Writers take an exclusive lock
and replace the file atomically; readers notice changes by the file's mtime, so a key created
or revoked with `tvapp keys` takes effect in a running server without a restart.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import os
import secrets
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterator

KEYS_FILE = "keys.json"
_FORMAT_VERSION = 1


class KeyStoreError(Exception):
    """The key store cannot be read or written."""


@dataclass(frozen=True)
class ApiKey:
    """One API key: its id, secret, and when it was created or revoked."""

    id: str
    secret: str
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        """Return True unless the key was revoked."""
        return self.revoked_at is None


def ensure_data_dir(data_dir: Path) -> Path:
    """Create the data directory (mode 0700) when missing and return it."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return data_dir


class KeyStore:
    """API keys kept in one JSON file in the data directory."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / KEYS_FILE
        self._keys: dict[str, ApiKey] = {}
        self._stamp: tuple[int, int] | None = None

    # reading -----------------------------------------------------------------

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._keys, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_ino)
        if stamp != self._stamp:
            self._keys = self._read()
            self._stamp = stamp

    def _read(self) -> dict[str, ApiKey]:
        try:
            data = json.loads(self.path.read_text())
            return {k["id"]: ApiKey(**k) for k in data["keys"]}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"the key store {self.path} is damaged: {exc}") from None

    def list(self) -> list[ApiKey]:
        """Return every key, oldest first."""
        self._refresh()
        return sorted(self._keys.values(), key=lambda k: k.created_at)

    def get(self, key_id: str) -> ApiKey | None:
        """Return the active key with this id, or None when unknown or revoked."""
        self._refresh()
        key = self._keys.get(key_id)
        return key if key is not None and key.active else None

    def signing_key(self) -> ApiKey | None:
        """Return the newest active key (the one the server signs its own tokens with)."""
        active = [k for k in self.list() if k.active]
        return active[-1] if active else None

    def check_secret(self, key_id: str, secret: str) -> ApiKey | None:
        """Return the key when `secret` is right for an active `key_id` (constant-time compare)."""
        key = self.get(key_id)
        expected = key.secret if key is not None else "x" * 43
        ok = hmac.compare_digest(expected.encode(), secret.encode())
        return key if key is not None and ok else None

    # writing -----------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[dict[str, ApiKey]]:
        ensure_data_dir(self.data_dir)
        lock_path = self.data_dir / (KEYS_FILE + ".lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            keys = self._read()
            yield keys
            self._write(keys)
            self._stamp = None
        finally:
            os.close(fd)

    def _write(self, keys: dict[str, ApiKey]) -> None:
        body = json.dumps(
            {"version": _FORMAT_VERSION, "keys": [asdict(k) for k in keys.values()]}, indent=2
        )
        fd, tmp = tempfile.mkstemp(dir=self.data_dir, prefix=".keys.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(body + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.data_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def create(self, now: float) -> ApiKey:
        """Create, store and return a new key."""
        key = ApiKey(id="AK" + secrets.token_hex(8), secret=secrets.token_urlsafe(32), created_at=now)
        with self._locked() as keys:
            keys[key.id] = key
        return key

    def revoke(self, key_id: str, now: float) -> ApiKey:
        """Revoke a key (tokens it signed stop working at once); raise KeyError when unknown."""
        with self._locked() as keys:
            key = keys.get(key_id)
            if key is None:
                raise KeyError(key_id)
            if key.active:
                key = replace(key, revoked_at=now)
                keys[key_id] = key
        return key

    def ensure_key(self, now: float) -> ApiKey | None:
        """Create a first key when there is no active one; return it, or None when one existed."""
        with self._locked() as keys:
            if any(k.active for k in keys.values()):
                return None
            key = ApiKey(id="AK" + secrets.token_hex(8), secret=secrets.token_urlsafe(32), created_at=now)
            keys[key.id] = key
        return key
