"""The TV's pairing over HTTP: POST /v1/pairings, POST /v1/pairings/{id}/confirm, and the code on the TV's screen.

The rules are tvapp.core.pairing's and the bodies and refusals tvapp.protocol.pairing's; the PairingDesk feeds them
each request, the clock and randomness, keeps what they decide the screen shows (``shown()``: the one place the
TV's pairing view lives; the session reads it and counts its expiry down by the same clock), tells the controller
when that changes (Controller.show_pairing), wakes up when a code expires or a lockout ends, and calls
``on_open_changed`` when "pairing open" changes (the app pushes the TV's state).

Everything here runs on the event loop serving the app (the app hops ``reopen()`` onto it). Nothing secret (the
code, the QR secret, a credential) is logged or put in an error: the code and the secret go only to the screen, the
credential only into the confirm answer.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Callable

from tvapp.core.pairing import Outcome, Pairing, PairingConfig, Pending
from tvapp.protocol.fields import ProtocolError
from tvapp.protocol.pairing import (
    Paired,
    PairingConfirm,
    PairingRefusal,
    PairingRequest,
    PairingStarted,
    read_body,
    refusal,
)
from tvapp.tv.remote.controller import Controller, PairingView
from tvapp.tv.remote.devices import DeviceStore
from tvapp.web.errors import HttpError

log = logging.getLogger(__name__)

MAX_PAIRING_ID_CHARS = 128


def _random_digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


def _random_token() -> str:
    return secrets.token_urlsafe(18)


def refused(answer: PairingRefusal) -> HttpError:
    """Return the HTTP error that carries a pairing refusal (with Retry-After when it says when)."""
    headers = {}
    if answer.retry_after is not None and answer.code in ("pairing_busy", "too_soon"):
        headers["Retry-After"] = str(max(1, math.ceil(answer.retry_after)))
    return HttpError(answer.code, answer.message, status=answer.status, headers=headers, extra=answer.extra())


def bad_body(exc: ProtocolError) -> HttpError:
    """Return the 422 bad_request answering a pairing body that breaks its rules (the Remote page knows it)."""
    return HttpError("bad_request", exc.message, status=422)


class PairingDesk:
    """Pairing as the phones see it over HTTP, and the pairing view on the TV's screen."""

    def __init__(self, *, controller: Controller, devices: DeviceStore, tv_name: str, base_url: str,
                 fingerprint: str | None, config: PairingConfig, clock: Callable[[], float],
                 on_open_changed: Callable[[], None]) -> None:
        self.controller = controller
        self.devices = devices
        self.tv_name = tv_name
        self.base_url = base_url.rstrip("/")
        self.fingerprint = fingerprint
        self.clock = clock
        self.on_open_changed = on_open_changed
        self._pairing = Pairing(config, _random_digits, _random_token)
        self._requester_name: tuple[str, str] = ("", "")  # (pairing_id, name shown on the TV)
        self._shown: PairingView | None = None
        self._hide_timer: asyncio.TimerHandle | None = None
        self._unlock_timer: asyncio.TimerHandle | None = None
        self._was_open = True

    def is_open(self) -> bool:
        """Return whether pairing accepts phones now (the zeroconf TXT "pair" bit); safe from any thread."""
        return self._pairing.is_open(self.clock())

    def shown(self) -> PairingView | None:
        """Return what the TV's screen shows of pairing now: the code, the QR code's URL, until when (None: nothing)."""
        return self._shown

    def reopen(self) -> None:
        """Open pairing again after a lockout or a close (the TV's own key press); hide a stale code."""
        self._pairing.reopen(self.clock())
        self._sync()

    def close(self) -> None:
        """Stop the timers (the app is shutting down)."""
        for timer in (self._hide_timer, self._unlock_timer):
            if timer is not None:
                timer.cancel()
        self._hide_timer = self._unlock_timer = None

    def request(self, body: bytes, requester: str) -> PairingStarted:
        """Answer POST /v1/pairings from ``requester`` (its address); raise HttpError when refused."""
        try:
            name = _shown_name(read_body(body, PairingRequest, optional=True).name)
        except ProtocolError as exc:
            raise bad_body(exc) from None
        decision = self._pairing.request(requester, self.clock())
        unlock_after = decision.retry_after if decision.outcome is Outcome.CLOSED else 0.0
        try:
            if decision.outcome is not Outcome.STARTED:
                raise refused(refusal(decision))
            assert decision.pending is not None
            pending = decision.pending
            if self._requester_name[0] != pending.pairing_id or name is not None:
                self._requester_name = (pending.pairing_id, name or "")
            log.info("pairing started for %s", requester)
            return PairingStarted(pairing_id=pending.pairing_id, expires_at=pending.expires_at,
                                  code_digits=len(pending.code))
        finally:
            self._sync(unlock_after)

    def confirm(self, pairing_id: str, body: bytes) -> Paired:
        """Answer POST /v1/pairings/{pairing_id}/confirm; raise HttpError when refused."""
        try:
            proof = read_body(body, PairingConfirm, optional=False)
        except ProtocolError as exc:
            raise bad_body(exc) from None
        if len(pairing_id) > MAX_PAIRING_ID_CHARS:
            raise refused(PairingRefusal(code="no_pairing", message="there is no such pairing in progress"))
        now = self.clock()
        decision = self._pairing.attempt(pairing_id, now, code=proof.code, secret=proof.secret)
        unlock_after = decision.retry_after if decision.outcome is Outcome.CLOSED else 0.0
        try:
            if decision.outcome is not Outcome.PAIRED:
                log.info("pairing attempt refused: %s", decision.outcome.value)
                raise refused(refusal(decision))
            stored_id, stored_name = self._requester_name
            name = _shown_name(proof.name) or (stored_name if stored_id == pairing_id else "") or "phone"
            device_id, credential = self.devices.add(name, now)
            log.info("paired device %s", device_id)
            return Paired(device_id=device_id, credential=credential, tv_name=self.tv_name)
        finally:
            self._sync(unlock_after)

    def _view(self, pending: Pending) -> PairingView:
        url = f"{self.base_url}/remote#pair={pending.pairing_id}.{pending.secret}"
        if self.fingerprint is not None:
            url += f"&fp={self.fingerprint}"
        pairing_id, name = self._requester_name
        return PairingView(pending.code, url, pending.expires_at, name if pairing_id == pending.pairing_id else "")

    def _sync(self, unlock_after: float = 0.0) -> None:
        """Show what pairing shows now, wake up when that changes by itself, and report a change of "open"."""
        now = self.clock()
        pending = self._pairing.current(now)
        view = None if pending is None else self._view(pending)
        if view != self._shown:
            self._shown = view
            try:
                self.controller.show_pairing(view)
            except Exception:
                log.exception("the TV could not show the pairing screen")
        self._hide_timer = self._wake(self._hide_timer, None if view is None else view.expires_at - now)
        if unlock_after > 0:
            self._unlock_timer = self._wake(self._unlock_timer, unlock_after)
        is_open = self._pairing.is_open(now)
        if is_open != self._was_open:
            self._was_open = is_open
            log.info("pairing is now %s", "open" if is_open else "closed")
            self.on_open_changed()

    def _wake(self, timer: asyncio.TimerHandle | None, after: float | None) -> asyncio.TimerHandle | None:
        """Replace `timer` with one that syncs pairing `after` seconds from now (none when `after` is None)."""
        if timer is not None:
            timer.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None  # not served yet: the first request syncs again
        if after is None:
            return None
        # A little late rather than early: the loop's clock and `clock()` are not the same clock.
        return loop.call_later(max(after, 0.0) + 0.02, self._sync)


def _shown_name(name: str | None) -> str | None:
    return None if name is None else (name.strip() or None)
