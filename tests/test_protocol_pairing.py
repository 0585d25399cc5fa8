"""Tests for tvapp.protocol.pairing: the pairing bodies and answers on the wire, refusals, and reading bodies."""

import json

import pytest

from tvapp.core.pairing import Decision, Outcome
from tvapp.protocol.fields import BAD_MESSAGE, ProtocolError
from tvapp.protocol.pairing import (
    MAX_BODY_BYTES,
    REFUSAL_STATUS,
    Paired,
    PairingConfirm,
    PairingRefusal,
    PairingRequest,
    PairingStarted,
    TvInfo,
    read_body,
    refusal,
)


def test_the_answers_are_the_json_the_tv_always_sent() -> None:
    info = TvInfo(tv_name="Den TV", instance_id="abc123", tv_id="tv_1", proto=1, tls=True,
                  fingerprint="sha256:AB:CD", pairing_open=True)
    assert info.to_json() == {"tv_name": "Den TV", "instance_id": "abc123", "tv_id": "tv_1", "proto": 1, "tls": True,
                              "fingerprint": "sha256:AB:CD", "pairing_open": True}
    assert TvInfo.from_json(info.to_json()) == info
    started = PairingStarted(pairing_id="pr_1", expires_at=1700000120.5, code_digits=6)
    assert started.to_json() == {"pairing_id": "pr_1", "expires_at": 1700000120.5, "code_digits": 6}
    paired = Paired(device_id="dev_1", credential="tvd_SECRET", tv_name="Den TV")
    assert paired.to_json() == {"device_id": "dev_1", "credential": "tvd_SECRET", "tv_name": "Den TV"}
    assert "tvd_SECRET" not in repr(paired)
    assert "123456" not in repr(PairingConfirm(code="123456"))


@pytest.mark.parametrize(("decision", "status", "body"), [
    (Decision(Outcome.BUSY, retry_after=30.0), 409, {"code": "pairing_busy", "retry_after": 30.0}),
    (Decision(Outcome.WRONG_CODE, retry_after=1.0), 400, {"code": "wrong_code", "retry_after": 1.0, "rotated": False}),
    (Decision(Outcome.ROTATED, retry_after=2.0), 400, {"code": "wrong_code", "retry_after": 2.0, "rotated": True}),
    (Decision(Outcome.TOO_SOON, retry_after=4.0), 429, {"code": "too_soon", "retry_after": 4.0}),
    (Decision(Outcome.EXPIRED), 410, {"code": "pairing_expired"}),
    (Decision(Outcome.NO_PAIRING), 404, {"code": "no_pairing"}),
    (Decision(Outcome.CLOSED), 403, {"code": "pairing_closed"}),
    (Decision(Outcome.CLOSED, retry_after=900.0), 403, {"code": "pairing_closed", "retry_after": 900.0}),
])  # fmt: skip
def test_every_refusal_has_its_code_status_and_extra_fields(decision: Decision, status: int,
                                                            body: dict[str, object]) -> None:
    answer = refusal(decision)
    assert answer.status == status == REFUSAL_STATUS[answer.code]
    wire = answer.to_body()
    assert wire["error"]["code"] == body["code"] and wire["error"]["message"]
    assert {k: v for k, v in wire.items() if k != "error"} == {k: v for k, v in body.items() if k != "code"}
    assert PairingRefusal.from_body(json.loads(json.dumps(wire))) == answer


def test_only_refusals_are_refusals() -> None:
    for outcome in (Outcome.STARTED, Outcome.PAIRED):
        with pytest.raises(ValueError):
            refusal(Decision(outcome))
    assert PairingRefusal.from_body({"detail": "Not Found"}) is None
    assert PairingRefusal.from_body({"error": {"code": 5}}) is None


def test_bodies_are_read_with_the_pairing_rules() -> None:
    assert read_body(b"", PairingRequest, optional=True) == PairingRequest()
    assert read_body(b'{"name": "Ann\'s phone", "why": 1}', PairingRequest, optional=True).name == "Ann's phone"
    assert read_body(b'{"code": "123456", "name": "A"}', PairingConfirm, optional=False) == (
        PairingConfirm(code="123456", name="A"))
    assert read_body(b'{"secret": "s3", "code": null}', PairingConfirm, optional=False).secret == "s3"


@pytest.mark.parametrize(("raw", "cls"), [
    (b"", PairingConfirm), (b"{", PairingConfirm), (b"[1]", PairingRequest), (b"\xff", PairingRequest),
    (b"{}", PairingConfirm), (b'{"code": 123456}', PairingConfirm), (b'{"code": "1", "secret": "2"}', PairingConfirm),
    (b'{"code": ""}', PairingConfirm), (json.dumps({"code": "1" * 129}).encode(), PairingConfirm),
    (json.dumps({"name": "x" * 65}).encode(), PairingRequest), (b'{"name": "a\\nb"}', PairingRequest),
    (b'{"name": 7}', PairingRequest), (b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}', PairingRequest),
])  # fmt: skip
def test_a_malformed_body_is_a_protocol_error(raw: bytes, cls: type[PairingRequest] | type[PairingConfirm]) -> None:
    with pytest.raises(ProtocolError) as caught:
        read_body(raw, cls, optional=cls is PairingRequest)
    assert caught.value.code in (BAD_MESSAGE, "body_too_large")
    assert "123456" not in caught.value.message
