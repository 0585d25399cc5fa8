"""The pairing state machine: a phone proves the code (or QR secret) the TV shows and earns a device credential.

Rules:

- One pairing at a time. A request while a pairing is pending and unexpired is refused (BUSY, with
  `retry_after` = seconds until it expires) unless it comes from the same requester, who gets the same
  pending pairing back (STARTED again). A request after the pending one expired replaces it.
- A pending pairing has a one-time code of exactly `code_digits` decimal digits and a one-time secret (for
  the QR code). It expires `code_ttl` seconds after its code was issued; an attempt on an expired pairing
  ends it (EXPIRED).
- `tries_per_code` wrong tries on one code replace the code with a fresh one with a fresh `code_ttl`
  (ROTATED; the TV shows the new code). The pairing id and the secret stay.
- Every wrong code or secret is a failure. After the Nth consecutive failure the next attempt is accepted
  only after min(backoff_max, backoff_base * 2**(N-1)) seconds (TOO_SOON before that, with `retry_after`).
  A success resets the consecutive count.
- After `max_failures` failures in total (successes do not reset this count) pairing is LOCKED: every
  request and attempt is refused (CLOSED) until the TV calls `reopen(now)` or `closed_for` seconds have
  passed. Either way both failure counts start again from zero.
- The TV may `close()` pairing at any time (it stays closed until `reopen(now)`) and `reopen(now)` it.
  Closing or locking drops the pending pairing. "Pairing open" (`is_open(now)`) is public (zeroconf TXT).
- An attempt on a pairing id that is not the pending one gets NO_PAIRING and is not a failure: pairing ids
  are handed only to the requester (and the QR code), so a stranger has no id to guess codes against.
- Secrets, codes and pairing ids are compared in constant time.

A `Decision` carries the pending pairing (code and secret included) for the TV to show. The adapter hands
the phone only `outcome`, `retry_after` and, on STARTED, `pairing_id`: never the code or the secret.

Every (state, event) pair missing from TRANSITIONS is a bug in this module, not a refusal.
"""

import enum
import hmac
from collections.abc import Callable
from dataclasses import dataclass, replace

# Beyond this many doublings every sane backoff_max has long been reached; it keeps 2**n finite.
_MAX_DOUBLINGS = 1000


class PairingState(enum.StrEnum):
    """Where pairing is: nothing pending, one pairing pending, locked after failures, or closed by the TV."""

    IDLE = "idle"
    PENDING = "pending"
    LOCKED = "locked"
    CLOSED = "closed"


class PairingEvent(enum.Enum):
    """Something that moves pairing from one state to another."""

    START = "start"
    FAIL = "fail"
    LOCK = "lock"
    SUCCEED = "succeed"
    EXPIRE = "expire"
    UNLOCK = "unlock"
    CLOSE = "close"
    REOPEN = "reopen"


_S = PairingState
_E = PairingEvent
TRANSITIONS: dict[tuple[PairingState, PairingEvent], PairingState] = {
    (_S.IDLE, _E.START): _S.PENDING,
    (_S.PENDING, _E.START): _S.PENDING,  # the pending pairing had expired: a new one replaces it
    (_S.PENDING, _E.FAIL): _S.PENDING,
    (_S.PENDING, _E.LOCK): _S.LOCKED,
    (_S.PENDING, _E.SUCCEED): _S.IDLE,
    (_S.PENDING, _E.EXPIRE): _S.IDLE,
    (_S.LOCKED, _E.UNLOCK): _S.IDLE,
    (_S.IDLE, _E.CLOSE): _S.CLOSED,
    (_S.PENDING, _E.CLOSE): _S.CLOSED,
    (_S.LOCKED, _E.CLOSE): _S.CLOSED,
    (_S.CLOSED, _E.CLOSE): _S.CLOSED,
    (_S.IDLE, _E.REOPEN): _S.IDLE,
    (_S.PENDING, _E.REOPEN): _S.PENDING,
    (_S.LOCKED, _E.REOPEN): _S.IDLE,
    (_S.CLOSED, _E.REOPEN): _S.IDLE,
}


@dataclass(frozen=True)
class PairingConfig:
    """Pairing limits; the defaults are the product's rules."""

    code_digits: int = 6
    code_ttl: float = 120.0
    tries_per_code: int = 3
    max_failures: int = 20
    closed_for: float = 900.0
    backoff_base: float = 1.0
    backoff_max: float = 30.0

    def __post_init__(self) -> None:
        if self.code_digits < 6:
            raise ValueError(f"code_digits must be at least 6, got {self.code_digits}")
        for name in ("tries_per_code", "max_failures"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("code_ttl", "closed_for"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("backoff_base", "backoff_max"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")

    def backoff(self, consecutive_failures: int) -> float:
        """Return the seconds to wait before the next attempt after this many consecutive failures."""
        if consecutive_failures < 1:
            return 0.0
        doublings = min(consecutive_failures - 1, _MAX_DOUBLINGS)
        return min(self.backoff_max, self.backoff_base * 2.0**doublings)


@dataclass(frozen=True)
class Pending:
    """The pairing in progress: what the TV shows (code, QR secret) and whom it is for."""

    pairing_id: str
    code: str
    secret: str
    expires_at: float
    requester: str


class Outcome(enum.StrEnum):
    """What became of a request or an attempt."""

    STARTED = "started"
    BUSY = "busy"
    CLOSED = "closed"
    PAIRED = "paired"
    WRONG_CODE = "wrong_code"
    ROTATED = "rotated"
    EXPIRED = "expired"
    NO_PAIRING = "no_pairing"
    TOO_SOON = "too_soon"


@dataclass(frozen=True)
class Decision:
    """The answer to a request or attempt: `pending` is for the TV's screen, never for the phone."""

    outcome: Outcome
    pending: Pending | None = None
    retry_after: float = 0.0


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


class Pairing:
    """The TV's pairing rules; the caller passes the time and the randomness, and acts on each Decision."""

    def __init__(
        self,
        config: PairingConfig,
        random_digits: Callable[[int], str],
        random_token: Callable[[], str],
    ) -> None:
        self.config = config
        self._random_digits = random_digits
        self._random_token = random_token
        self._state = PairingState.IDLE
        self._pending: Pending | None = None
        self._tries_on_code = 0
        self._failures = 0
        self._consecutive = 0
        self._next_attempt_at = float("-inf")
        self._locked_until = float("-inf")

    def failures(self, now: float) -> int:
        """Return the failures at `now` that count toward closing pairing (since it last opened)."""
        if self._state is PairingState.LOCKED and now >= self._locked_until:
            return 0
        return self._failures

    def state(self, now: float) -> PairingState:
        """Return the state pairing is in at `now`."""
        if self._state is PairingState.LOCKED and now >= self._locked_until:
            return PairingState.IDLE
        return self._state

    def is_open(self, now: float) -> bool:
        """Return whether pairing accepts requests at `now` (the public "pairing open" bit)."""
        return self.state(now) in (PairingState.IDLE, PairingState.PENDING)

    def current(self, now: float) -> Pending | None:
        """Return the pending pairing the TV shows at `now`, or None when there is nothing to show."""
        pending = self._pending
        if self.state(now) is PairingState.PENDING and pending is not None and now < pending.expires_at:
            return pending
        return None

    def request(self, requester: str, now: float) -> Decision:
        """Ask to pair for `requester`: STARTED (show `pending` on the TV), BUSY or CLOSED."""
        self._settle(now)
        if not self.is_open(now):
            return self._closed(now)
        pending = self.current(now)
        if pending is not None:
            if _same(pending.requester, requester):
                return Decision(Outcome.STARTED, pending)
            return Decision(Outcome.BUSY, retry_after=pending.expires_at - now)
        self._fire(PairingEvent.START)
        self._pending = Pending(
            pairing_id=self._random_token(),
            code=self._new_code(),
            secret=self._random_token(),
            expires_at=now + self.config.code_ttl,
            requester=requester,
        )
        self._tries_on_code = 0
        return Decision(Outcome.STARTED, self._pending)

    def attempt(
        self, pairing_id: str, now: float, *, code: str | None = None, secret: str | None = None
    ) -> Decision:
        """Prove `code` or `secret` (exactly one) for `pairing_id`; on PAIRED issue the device credential."""
        if (code is None) == (secret is None):
            raise ValueError("attempt takes exactly one of code or secret")
        self._settle(now)
        if not self.is_open(now):
            return self._closed(now)
        pending = self._pending
        if pending is None or not _same(pending.pairing_id, pairing_id):
            return Decision(Outcome.NO_PAIRING)
        if now >= pending.expires_at:
            self._end_pending(PairingEvent.EXPIRE)
            return Decision(Outcome.EXPIRED)
        if now < self._next_attempt_at:
            return Decision(Outcome.TOO_SOON, retry_after=self._next_attempt_at - now)
        if (code is not None and _same(code, pending.code)) or (secret is not None and _same(secret, pending.secret)):
            self._consecutive = 0
            self._end_pending(PairingEvent.SUCCEED)
            return Decision(Outcome.PAIRED, pending)
        return self._fail(pending, now)

    def close(self) -> None:
        """Close pairing until the TV reopens it; a pending pairing is dropped."""
        self._fire(PairingEvent.CLOSE)
        self._pending = None

    def reopen(self, now: float) -> None:
        """Open pairing again (from the TV) and start counting failures from zero."""
        self._settle(now)
        self._fire(PairingEvent.REOPEN)
        self._reset_failures()

    def _fail(self, pending: Pending, now: float) -> Decision:
        self._failures += 1
        self._consecutive += 1
        wait = self.config.backoff(self._consecutive)
        self._next_attempt_at = now + wait
        if self._failures >= self.config.max_failures:
            self._fire(PairingEvent.LOCK)
            self._pending = None
            self._locked_until = now + self.config.closed_for
            return self._closed(now)
        self._fire(PairingEvent.FAIL)
        self._tries_on_code += 1
        if self._tries_on_code < self.config.tries_per_code:
            return Decision(Outcome.WRONG_CODE, retry_after=wait)
        self._pending = replace(pending, code=self._new_code(), expires_at=now + self.config.code_ttl)
        self._tries_on_code = 0
        return Decision(Outcome.ROTATED, self._pending, retry_after=wait)

    def _settle(self, now: float) -> None:
        """Apply what the passing of time alone decides: a lock that has run out."""
        if self._state is PairingState.LOCKED and now >= self._locked_until:
            self._fire(PairingEvent.UNLOCK)
            self._reset_failures()

    def _closed(self, now: float) -> Decision:
        retry_after = self._locked_until - now if self._state is PairingState.LOCKED else 0.0
        return Decision(Outcome.CLOSED, retry_after=retry_after)

    def _end_pending(self, event: PairingEvent) -> None:
        self._fire(event)
        self._pending = None

    def _reset_failures(self) -> None:
        self._failures = 0
        self._consecutive = 0
        self._next_attempt_at = float("-inf")
        self._locked_until = float("-inf")

    def _new_code(self) -> str:
        digits = self.config.code_digits
        code = self._random_digits(digits)
        if len(code) != digits or not (code.isascii() and code.isdigit()):
            raise ValueError(f"random_digits({digits}) must return {digits} ASCII digits")
        return code

    def _fire(self, event: PairingEvent) -> None:
        self._state = TRANSITIONS[(self._state, event)]
