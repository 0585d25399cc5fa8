"""Pairing over HTTP (protocol version 1): the bodies and answers of the TV's pairing routes, shared by the TV and
the phone (``tvapp remote`` and the Remote page).

    GET  /v1/tv                                               200 TvInfo
    POST /v1/pairings               PairingRequest (optional) 201 PairingStarted, or a PairingRefusal
    POST /v1/pairings/{id}/confirm  PairingConfirm            201 Paired, or a PairingRefusal

The bodies are plain JSON objects, without the ``type``/``v`` envelope of the websocket protocols (the route says
what they are), read with tvapp.protocol.fields' records and its envelope's size and JSON checks. A body that breaks
its rules is ProtocolError (``bad_message``), which the TV answers with 422 ``bad_request``.

A refusal is ``{"error": {"code", "message"}}`` with, for some codes, ``retry_after`` (seconds) and ``rotated``
next to it; ``refusal()`` turns a tvapp.core.pairing Decision into one, and REFUSAL_STATUS gives its HTTP status:

    409 pairing_busy       another phone is pairing now (retry_after)
    403 pairing_closed     pairing is closed or locked on the TV (retry_after while locked)
    400 wrong_code         not the code on the screen (rotated: the TV shows a new code now; retry_after)
    429 too_soon           wrong codes back off: wait retry_after seconds
    410 pairing_expired    the code expired: ask again
    404 no_pairing         no such pairing in progress

Never in any of these: the code or the QR secret (they go only to the TV's screen).
"""

import dataclasses
from typing import Annotated, Any, Final

from tvapp.core.pairing import Decision, Outcome
from tvapp.protocol import fields as f
from tvapp.protocol.fields import BAD_MESSAGE, ProtocolError

PROTOCOL_VERSION: Final = 1
MAX_BODY_BYTES: Final = 4096
MAX_DEVICE_NAME_CHARS: Final = 64
MAX_PROOF_CHARS: Final = 128
MAX_ID_CHARS: Final = 128
MAX_NAME_CHARS: Final = 128
MAX_CREDENTIAL_CHARS: Final = 512

BODY: Final = f.Envelope(version=PROTOCOL_VERSION, too_big="body_too_large")
"""How pairing bodies are read: only its load() (size and JSON), since they travel without an envelope."""

Id = Annotated[str, f.Text(MAX_ID_CHARS, nonempty=True)]
Name = Annotated[str, f.Text(MAX_NAME_CHARS)]
DeviceName = Annotated[str | None, f.Text(MAX_DEVICE_NAME_CHARS, nullable=True, printable=True)]
Proof = Annotated[str | None, f.Text(MAX_PROOF_CHARS, nonempty=True, nullable=True)]
Flag = Annotated[bool, f.Bool()]
Time = Annotated[float, f.Number()]
OptionalSeconds = Annotated[float | None, f.Number(nullable=True)]
OptionalFlag = Annotated[bool | None, f.Bool(nullable=True)]
Fingerprint = Annotated[str | None, f.Text(MAX_ID_CHARS, nullable=True)]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TvInfo(f.Record):
    """What GET /v1/tv says about the TV: its name, ids, protocol, TLS and whether pairing is open."""

    tv_name: Name
    instance_id: Name = ""
    tv_id: Name = ""
    proto: Annotated[int, f.Integer(0, 2**31)] = PROTOCOL_VERSION
    tls: Flag = False
    fingerprint: Fingerprint = None
    pairing_open: Flag = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class PairingRequest(f.Record):
    """Ask the TV to show a pairing code; ``name`` is what the TV shows as the phone's name (printable)."""

    name: DeviceName = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class PairingStarted(f.Record):
    """The TV shows a code of ``code_digits`` digits until ``expires_at`` for the pairing ``pairing_id``."""

    pairing_id: Id
    expires_at: Time
    code_digits: Annotated[int, f.Integer(1, 64)] = 6


@dataclasses.dataclass(frozen=True, kw_only=True)
class PairingConfirm(f.Record):
    """Prove the code on the screen or the QR code's secret (exactly one of them), optionally naming the phone."""

    code: Proof = dataclasses.field(default=None, repr=False)
    secret: Proof = dataclasses.field(default=None, repr=False)
    name: DeviceName = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.code is None) == (self.secret is None):
            raise ProtocolError(BAD_MESSAGE, "send exactly one of code or secret")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Paired(f.Record):
    """The phone is paired: its device id, its credential for /v1/remote (shown nowhere else), the TV's name."""

    device_id: Id
    credential: Annotated[str, f.Text(MAX_CREDENTIAL_CHARS, nonempty=True)] = dataclasses.field(repr=False)
    tv_name: Name = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class PairingRefusal(f.Record):
    """A refused pairing step: the error's code and message, and (for some codes) when to retry, whether the code
    on the screen changed."""

    code: Id
    message: Annotated[str, f.Text(1024)] = ""
    retry_after: OptionalSeconds = None
    rotated: OptionalFlag = None

    @property
    def status(self) -> int:
        """Return the HTTP status the TV answers this refusal with."""
        return REFUSAL_STATUS.get(self.code, 400)

    def extra(self) -> dict[str, Any]:
        """Return the fields that go next to "error" in the body (only those that are set)."""
        fields = {"retry_after": self.retry_after, "rotated": self.rotated}
        return {name: value for name, value in fields.items() if value is not None}

    def to_body(self) -> dict[str, Any]:
        """Return the whole JSON body of the refusal."""
        return {"error": {"code": self.code, "message": self.message}, **self.extra()}

    @classmethod
    def from_body(cls, body: object) -> "PairingRefusal | None":
        """Return the refusal in an error body, or None when the body is not one."""
        if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
            return None
        try:
            return cls.from_json({**body["error"], **body})
        except ProtocolError:
            return None


REFUSAL_STATUS: Final = {"pairing_busy": 409, "pairing_closed": 403, "wrong_code": 400, "too_soon": 429,
                         "pairing_expired": 410, "no_pairing": 404}


def refusal(decision: Decision) -> PairingRefusal:
    """Return what the phone is told about a request or attempt that did not start or finish a pairing."""
    outcome, wait = decision.outcome, decision.retry_after
    if outcome is Outcome.BUSY:
        return PairingRefusal(code="pairing_busy", message="another phone is pairing with this TV: try again soon",
                              retry_after=wait)
    if outcome in (Outcome.WRONG_CODE, Outcome.ROTATED):
        rotated = outcome is Outcome.ROTATED
        return PairingRefusal(code="wrong_code", message="that is not the code on the TV" +
                              (": the TV shows a new code now" if rotated else ""), retry_after=wait, rotated=rotated)
    if outcome is Outcome.TOO_SOON:
        return PairingRefusal(code="too_soon", message="too many wrong codes: wait before trying again",
                              retry_after=wait)
    if outcome is Outcome.EXPIRED:
        return PairingRefusal(code="pairing_expired", message="the code expired: ask to pair again")
    if outcome is Outcome.NO_PAIRING:
        return PairingRefusal(code="no_pairing", message="there is no such pairing in progress")
    if outcome is Outcome.CLOSED:
        return PairingRefusal(code="pairing_closed", message="pairing is closed on this TV: reopen it on the TV",
                              retry_after=wait if wait > 0 else None)
    raise ValueError(f"{outcome.value} is not a refusal")


def read_body(raw: bytes, cls: type[f.R], *, optional: bool) -> f.R:
    """Return the record in a request body (an empty body is an empty object when ``optional``); raise
    ProtocolError (bad_message) when it is not JSON, not an object, or breaks the record's rules."""
    if not raw.strip():
        if not optional:
            raise ProtocolError(BAD_MESSAGE, "a JSON object body is required")
        return cls.decode_at({}, "body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(BAD_MESSAGE, "the body is not UTF-8") from None
    return cls.decode_at(BODY.load(text, MAX_BODY_BYTES), "body")
