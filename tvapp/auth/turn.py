"""TURN REST ephemeral credentials, the scheme coturn implements with `use-auth-secret`.

Each joined participant gets its own (username, password) for the configured `[media] turn_urls`:
username "{expiry}:{identity}" (expiry in Unix seconds), password base64(HMAC-SHA1(secret, username)).
coturn recomputes the password from its `static-auth-secret` and refuses a username whose expiry has passed.
The secret itself never leaves the core: only these derived values go to a participant. Pure: time is an argument.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import NamedTuple


class TurnCredentials(NamedTuple):
    """A participant's TURN username and password, and when they stop working (Unix seconds)."""

    username: str
    password: str
    expiry: int


def turn_credentials(secret: str, identity: str, *, now: float, ttl: int) -> TurnCredentials:
    """Return TURN REST credentials for `identity`, valid for `ttl` seconds from `now`."""
    if not secret:
        raise ValueError("a TURN secret is needed")
    if ttl <= 0:
        raise ValueError("the TURN credential lifetime must be positive")
    expiry = int(now) + ttl
    username = f"{expiry}:{identity}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return TurnCredentials(username, base64.b64encode(digest).decode("ascii"), expiry)
