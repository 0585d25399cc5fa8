"""Tests for tvapp.core.credentials: device credential format, hashing and device ids."""

import hashlib
import re
import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tvapp.core.credentials import credential_hash, credential_matches, device_id, new_credential

URLSAFE = re.compile(r"[A-Za-z0-9_-]+")


def test_credential_format() -> None:
    credential = new_credential(secrets.token_bytes(32))
    assert credential.startswith("tvd_")
    assert len(credential) >= 43
    assert URLSAFE.fullmatch(credential[4:])
    assert "=" not in credential


def test_credential_carries_all_the_random_bytes() -> None:
    assert new_credential(bytes(32)) != new_credential(bytes(31) + b"\x01")
    assert new_credential(bytes(32)) == "tvd_" + "A" * 43


def test_credential_refuses_too_few_random_bytes() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        new_credential(secrets.token_bytes(31))


def test_hash_is_stable_sha256_hex() -> None:
    credential = new_credential(bytes(range(32)))
    assert credential_hash(credential) == credential_hash(credential)
    assert credential_hash(credential) == hashlib.sha256(credential.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", credential_hash(credential))


def test_matches_only_the_right_credential() -> None:
    credential = new_credential(secrets.token_bytes(32))
    other = new_credential(secrets.token_bytes(32))
    stored = credential_hash(credential)
    assert credential_matches(credential, stored)
    assert not credential_matches(other, stored)
    assert not credential_matches(credential, stored.upper())
    assert not credential_matches(credential, "")
    assert not credential_matches("", stored)


def test_matches_does_not_raise_on_non_ascii_stored_hash() -> None:
    assert not credential_matches("tvd_x", "é" * 64)


@given(st.binary(min_size=32, max_size=64))
def test_hash_never_contains_the_credential(random_bytes: bytes) -> None:
    credential = new_credential(random_bytes)
    stored = credential_hash(credential)
    assert credential not in stored
    assert credential[4:] not in stored
    assert credential_matches(credential, stored)


def test_device_id_format() -> None:
    ident = device_id(secrets.token_bytes(9))
    assert re.fullmatch(r"dev_[A-Za-z0-9_-]{12}", ident)
    assert device_id(secrets.token_bytes(16)).startswith("dev_")
    assert len(device_id(secrets.token_bytes(16))) == 16


def test_device_ids_differ_for_different_bytes() -> None:
    assert device_id(bytes(9)) != device_id(bytes(8) + b"\x01")


def test_device_id_refuses_too_few_random_bytes() -> None:
    with pytest.raises(ValueError, match="at least 9"):
        device_id(bytes(8))
