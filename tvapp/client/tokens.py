"""A Room's tokens: read a JWT's times, decide when to refresh, and keep the access token fresh.

The access token a Room joins with expires (600 s by default); with a refresh token the SDK trades it for a new
pair (`RestClient.refresh_tokens`, which rotates the refresh token) a fifth of the lifetime before expiry, 1 to
60 s early (`refresh_delay`), so a rejoin after a network drop always has a valid token. `TokenKeeper` holds the
current pair; its `keep_fresh()` loop runs as a task the Room owns.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Callable

from tvapp.client.rest import ApiError, RestClient

log = logging.getLogger(__name__)

# Refusals of a refresh token that another try cannot fix.
FINAL_REFRESH_STATUSES = frozenset({400, 401, 403, 404, 422})


def token_times(token: str) -> tuple[float, float] | None:
    """Return a JWT's (issued at, expires at) without checking it, or None if it has no readable times."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["iat"]), float(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError, binascii.Error):
        return None


def refresh_delay(issued_at: float, expires_at: float, now: float) -> float:
    """Return how long from `now` to wait before refreshing: a fifth of the lifetime early, 1 to 60 s early."""
    margin = min(60.0, max(1.0, (expires_at - issued_at) * 0.2))
    return max(0.0, expires_at - margin - now)


def token_expired(token: str, now: float) -> bool:
    """Return whether a JWT's expiry is at or before `now` (False when it has no readable times)."""
    times = token_times(token)
    return times is not None and times[1] <= now


class TokenKeeper:
    """The current access token and the refresh token that renews it (which rotates with every refresh)."""

    def __init__(self, rest: RestClient, access_token: str, refresh_token: str | None) -> None:
        self.rest = rest
        self.access_token = access_token
        self.refresh_token = refresh_token
        self._lock = asyncio.Lock()

    async def refresh(self, stale: str) -> None:
        """Trade the refresh token for a new pair, unless another caller already replaced access token `stale`."""
        async with self._lock:
            if self.access_token != stale or self.refresh_token is None:
                return
            pair = await self.rest.refresh_tokens(self.refresh_token)
            self.access_token, self.refresh_token = pair.access_token, pair.refresh_token

    async def keep_fresh(self, on_refused: Callable[[ApiError], None]) -> None:
        """Refresh before every expiry until the refresh token is refused (then call `on_refused` and return)."""
        failures = 0
        while self.refresh_token is not None:
            times = token_times(self.access_token)
            if times is None:
                return
            await asyncio.sleep(refresh_delay(*times, time.time()))
            try:
                await self.refresh(self.access_token)
                failures = 0
            except ApiError as exc:
                if exc.status in FINAL_REFRESH_STATUSES:
                    on_refused(exc)
                    return
                failures += 1
            except OSError as exc:
                log.info("room: token refresh failed (%s), retrying", exc)
                failures += 1
            if failures:
                await asyncio.sleep(min(30.0, 2.0 * failures))
