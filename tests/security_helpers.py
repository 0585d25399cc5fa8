"""Helpers for the security tests: craft JWTs by hand, join over a raw websocket, check error bodies and run the CLI."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

AUDIENCE = "tvapp"


def ws_url(server_url: str) -> str:
    """Return the signaling websocket URL of a server."""
    return server_url.replace("http://", "ws://", 1) + "/v1/signal"


def b64url(data: bytes) -> str:
    """Encode bytes as unpadded base64url, as JWT segments are."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_hs256(claims: dict[str, Any], secret: str | bytes, header: dict[str, Any]) -> str:
    """Sign a JWT with HMAC-SHA256 by hand, so that any secret (even a PEM that PyJWT refuses) can be used."""
    key = secret.encode() if isinstance(secret, str) else secret
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def base_claims(kid: str, room: str, identity: str, *, host: bool = True, now: float | None = None,
                ttl: int = 600, **extra: Any) -> dict[str, Any]:
    """Return a valid access-token claim set, as the server would issue it."""
    t = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": kid, "sub": identity, "aud": AUDIENCE, "iat": t, "nbf": t, "exp": t + ttl,
        "jti": secrets.token_urlsafe(16), "typ": "access",
        "grants": {"room": room, "join": True, "publish": True, "subscribe": True, "publish_data": True,
                   "host": host, "hidden": False},
    }
    claims.update(extra)
    return claims


def craft(key: tuple[str, str], room: str, identity: str, *, drop: tuple[str, ...] = (),
          header: dict[str, Any] | None = None, secret: str | bytes | None = None, **changes: Any) -> str:
    """Return an HS256 token for `room` signed with `key` (id, secret), with claims changed or dropped."""
    kid, key_secret = key
    claims = base_claims(kid, room, identity, **changes)
    for name in drop:
        del claims[name]
    head = {"alg": "HS256", "typ": "JWT", "kid": kid} if header is None else header
    return sign_hs256(claims, key_secret if secret is None else secret, head)


async def join_outcome(server_url: str, token: str, timeout: float = 5.0) -> tuple[dict[str, Any], int | None]:
    """Send a join with `token`; return the first message and the close code (None when it joined and stayed open)."""
    async with connect(ws_url(server_url), open_timeout=timeout, max_size=2**20) as ws:
        await ws.send(json.dumps({"type": "join", "v": 1, "token": token}))
        first = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if first.get("type") == "joined":
            return first, None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await ws.recv()
        except ConnectionClosed:
            pass
        return first, ws.close_code


def join(server_url: str, token: str) -> tuple[dict[str, Any], int | None]:
    """Run join_outcome to completion from synchronous test code."""
    return asyncio.run(join_outcome(server_url, token))


def assert_refused_join(server_url: str, token: str, code: str) -> None:
    """Assert that joining with `token` gets an error `code` and then close 1008."""
    first, close_code = join(server_url, token)
    assert first["type"] == "error", first
    assert first["code"] == code, first
    assert close_code == 1008


def assert_error(response: httpx.Response, status: int | None = None, code: str | None = None) -> dict[str, Any]:
    """Assert the response is a 4xx JSON error body without a traceback; return the error object."""
    text = response.text
    assert "Traceback" not in text and 'File "' not in text, text
    assert 400 <= response.status_code < 500, (response.status_code, text)
    if status is not None:
        assert response.status_code == status, (response.status_code, text)
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message"}, body
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str), body
    if code is not None:
        assert error["code"] == code, body
    return error


def bearer(token: str) -> dict[str, str]:
    """Return an Authorization header carrying `token`."""
    return {"Authorization": f"Bearer {token}".rstrip()}


def call(server_url: str, method: str, path: str, *, token: str | None = None, json: Any = None) -> httpx.Response:
    """Make one request without API key credentials, with a Bearer token when given."""
    return httpx.request(method, server_url + path, headers=bearer(token) if token is not None else None, json=json,
                         timeout=10.0)


def run_cli(*args: str, data: Path | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run `python -m tvapp ARGS [--data DIR]` and return the finished process."""
    cmd = [sys.executable, "-m", "tvapp", *args]
    if data is not None:
        cmd += ["--data", str(data)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
