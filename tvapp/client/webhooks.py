"""Verify a tvapp webhook request: the receiver's side of tvapp.server.webhooks.

    event = verify(request_body, request.headers["Authorization"], api_key, api_secret)

`verify` checks the JWT in the Authorization header (HS256 with the API secret, `iss` the API key id, not
expired) and that its `sha256` claim is the base64 SHA-256 of the exact body bytes; only then does it parse the
body. Anything else raises WebhookError. De-duplicate by `event.id`: delivery is at least once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import jwt


class WebhookError(Exception):
    """The request is not a valid tvapp webhook (bad or forged signature, wrong key, hash mismatch, expired)."""


@dataclass(frozen=True)
class WebhookEvent:
    """One verified webhook event; `data` is the whole body."""

    id: str
    event: str
    created_at: float
    room: dict[str, Any]
    participant: dict[str, Any] | None = None
    track: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict, repr=False)


def verify(body: bytes | str, authorization: str | None, api_key: str, api_secret: str,
           *, leeway: float = 10.0) -> WebhookEvent:
    """Return the event when `authorization` signs `body` with this key; raise WebhookError otherwise."""
    raw = body.encode() if isinstance(body, str) else bytes(body)
    if not authorization:
        raise WebhookError("no Authorization header")
    token = authorization[7:] if authorization.lower().startswith("bearer ") else authorization
    try:
        claims = jwt.decode(token.strip(), api_secret, algorithms=["HS256"], issuer=api_key, leeway=leeway,
                            options={"require": ["exp", "iss", "sha256"]})
    except jwt.ExpiredSignatureError:
        raise WebhookError("the webhook signature has expired") from None
    except jwt.InvalidIssuerError:
        raise WebhookError("the webhook was signed with another API key") from None
    except jwt.PyJWTError as exc:
        raise WebhookError(f"the webhook signature is not valid ({type(exc).__name__})") from None
    expected = base64.b64encode(hashlib.sha256(raw).digest()).decode()
    if not isinstance(claims.get("sha256"), str) or not hmac.compare_digest(claims["sha256"], expected):
        raise WebhookError("the body does not match the signed hash")
    try:
        data = json.loads(raw)
        return WebhookEvent(id=str(data["id"]), event=str(data["event"]), created_at=float(data["created_at"]),
                            room=dict(data["room"]), participant=data.get("participant"), track=data.get("track"),
                            data=data)
    except (ValueError, KeyError, TypeError):
        raise WebhookError("the signed body is not a webhook event") from None


__all__ = ["WebhookError", "WebhookEvent", "verify"]
