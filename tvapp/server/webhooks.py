"""Webhooks: events queued durably in the store, signed as LiveKit does, sent at least once, in order per room.

`Webhooks.emit(event, room, **parts)` is what the core (and the recording and composition code) calls where an
event is decided: it puts the event in the store's webhook_queue through the store writer at once (in order with
every other write), one row per [webhooks] url plus the room's status_callback. `run()` is the sender, an asyncio
task: it sends each lane's head (tvapp.core.webhooks decides which and when), with urllib in a worker thread and a
per-request timeout, and drops the row once the receiver answers 2xx (or the delivery is given up); a failure
waits out the backoff. Since rows leave the queue only after a 2xx, a restart re-sends what was in flight: a
receiver de-duplicates by the body's `id`.

The Authorization header is a JWT (HS256, signed with the newest active API key's secret, `iss` = that key's id,
`sha256` = base64 of the body's SHA-256, valid for SIGNATURE_TTL seconds). Secrets and signed headers are never
logged; a delivery error is logged with the URL's scheme and host only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import jwt

from tvapp.auth.keys import KeyStore, KeyStoreError
from tvapp.config import WebhooksConfig
from tvapp.core import webhooks as rules
from tvapp.core.codes import new_id
from tvapp.server.store import RoomRow, Store
from tvapp.server.webhook_store import Delivery
from tvapp.server.writer import StoreWriter
from tvapp.web.fetch import Deadline, opener

log = logging.getLogger(__name__)

SIGNATURE_TTL = 300
CONTENT_TYPE = "application/webhook+json"


def room_part(row: RoomRow) -> dict[str, Any]:
    """Return the `room` object of an event body."""
    return {"sid": row.sid, "name": row.name, "status": row.status, "max_participants": row.max_participants,
            "created_at": row.created_at, "started_at": row.started_at, "ended_at": row.ended_at}


def sign(body: bytes, key_id: str, secret: str, now: float) -> str:
    """Return the Authorization header value for `body`: a JWT whose sha256 claim is the body's hash."""
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    claims = {"iss": key_id, "nbf": int(now) - 1, "iat": int(now), "exp": int(now) + SIGNATURE_TTL,
              "sha256": digest}
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": key_id})


def where(url: str) -> str:
    """Return a URL as it may be logged: scheme, host and port only."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}"


def _post(url: str, body: bytes, authorization: str, timeout: float, allow_private: bool = True) -> int:
    """POST one delivery; return the HTTP status. The whole exchange ends within `timeout` (a receiver dripping
    bytes is cut off); raise OSError, ValueError or http.client.HTTPException (an answer that is not HTTP)."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": CONTENT_TYPE, "Authorization": authorization, "User-Agent": "tvapp-webhooks"})
    deadline = Deadline(timeout, allow_private=allow_private)
    try:  # http(s) only (checked when configured, and the opener has no other handler); redirects not followed
        with opener(deadline).open(request, timeout=timeout) as response:
            response.read(65_536)
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        status = int(exc.code)
    finally:
        deadline.cancel()
    if deadline.expired:
        raise TimeoutError(f"no complete answer within {timeout:g} s")
    return status




class Webhooks:
    """Queues events durably and sends them; one per running core."""

    def __init__(self, config: WebhooksConfig, keys: KeyStore, reader: Store, writer: StoreWriter,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.keys = keys
        self.reader = reader
        self.writer = writer
        self.clock = clock
        self.policy = rules.RetryPolicy(config.max_attempts, config.base_delay, config.max_delay)
        self._wake = asyncio.Event()
        self._busy: set[str] = set()
        self._sending: set[asyncio.Task[None]] = set()
        self.delivered = 0
        self.given_up = 0

    def emit(self, event: str, room: RoomRow, **parts: Any) -> str:
        """Queue `event` about `room` (parts: participant, track, recording, composition, reason); return its id.

        The row is handed to the store writer before this returns, in order with every other write; the
        sender is woken once it is committed. Raise ValueError for an unknown event or wrong parts.
        """
        event_id = new_id("WH")
        now = self.clock()
        payload = rules.event_payload(event, event_id, now, room_part(room), **parts)
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        urls = self.config.urls
        future = self.writer.submit(lambda s: s.enqueue_webhook(event_id, event, room.sid, body, urls, now))
        future.add_done_callback(self._queued)
        return event_id

    def _queued(self, future: asyncio.Future[int]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            log.error("webhook: could not queue an event: %s", exc)
            return
        self._wake.set()

    def participant_part(self, participant: Any) -> dict[str, Any]:
        """Return the `participant` object of an event body for a live participant."""
        return {"sid": participant.sid, "identity": participant.identity, "name": participant.name,
                "joined_at": participant.joined_at}

    async def run(self) -> None:
        """Send queued deliveries forever (cancel to stop; what is in flight is sent again after a restart)."""
        try:
            while True:
                self._wake.clear()
                now = self.clock()
                heads = self.reader.webhook_heads()
                by_seq = {d.seq: d for d in heads}
                pending = [rules.Pending(d.seq, d.lane, d.attempts, d.next_at) for d in heads]
                for item in rules.due(pending, now, self._busy):
                    self._start(by_seq[item.seq])
                wake_at = rules.next_wake(pending, self._busy)
                timeout = None if wake_at is None else max(0.0, wake_at - self.clock())
                if timeout is not None and timeout == 0.0:
                    timeout = 0.001
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                except TimeoutError:
                    pass
        finally:
            for task in list(self._sending):
                task.cancel()

    def _start(self, delivery: Delivery) -> None:
        self._busy.add(delivery.lane)
        task = asyncio.create_task(self._send(delivery))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, delivery: Delivery) -> None:
        try:
            ok, error = await self._attempt(delivery)
            outcome = rules.after_attempt(self.policy, delivery.attempts, ok, self.clock())
            if outcome.drop:
                await self.writer.call(lambda s: s.webhook_done(delivery.seq))
                if outcome.gave_up:
                    self.given_up += 1
                    log.warning("webhook %s %s to %s given up after %d attempts (%s)", delivery.event,
                                delivery.event_id, where(delivery.url), outcome.attempts, error)
                else:
                    self.delivered += 1
            else:
                await self.writer.call(
                    lambda s: s.webhook_retry(delivery.seq, outcome.attempts, outcome.next_at, error))
                log.info("webhook %s %s to %s failed (%s); attempt %d in %.1f s", delivery.event,
                         delivery.event_id, where(delivery.url), error, outcome.attempts + 1,
                         outcome.next_at - self.clock())
        except Exception:
            log.exception("webhook: sending %s failed unexpectedly", delivery.event_id)
            await asyncio.sleep(self.policy.base_delay)
        finally:
            self._busy.discard(delivery.lane)
            self._wake.set()

    async def _attempt(self, delivery: Delivery) -> tuple[bool, str]:
        try:
            key = self.keys.signing_key()
        except KeyStoreError:
            key = None
        if key is None:
            return False, "no active API key to sign with"
        authorization = sign(delivery.body, key.id, key.secret, self.clock())
        try:
            status = await asyncio.to_thread(_post, delivery.url, delivery.body, authorization, self.config.timeout,
                                             self.config.allow_private)
        except (OSError, ValueError, http.client.HTTPException) as exc:  # refused, timed out, DNS, TLS, not HTTP
            return False, type(exc).__name__
        return 200 <= status < 300, f"HTTP {status}"

    def pending(self) -> int:
        """Return how many deliveries are queued."""
        return self.reader.webhook_count()


__all__ = ["CONTENT_TYPE", "SIGNATURE_TTL", "Webhooks", "room_part", "sign", "where"]
