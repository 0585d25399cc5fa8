"""Tests for tvapp.core.codes: invite codes, pairing codes, ids."""

import hashlib
import math
import re
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tvapp.core.codes import (
    INVITE_ALPHABET,
    INVITE_LENGTH,
    code_bits,
    format_invite_code,
    hash_code,
    new_id,
    new_invite_code,
    new_pairing_code,
    normalize_invite_code,
)

canonical_codes = st.text(alphabet=INVITE_ALPHABET, min_size=INVITE_LENGTH, max_size=INVITE_LENGTH)


def test_alphabet_leaves_out_look_alikes() -> None:
    assert not set("0O1IL") & set(INVITE_ALPHABET)
    assert len(set(INVITE_ALPHABET)) == len(INVITE_ALPHABET) == 31


def test_invite_code_has_at_least_30_bits() -> None:
    assert code_bits(INVITE_LENGTH) >= 30
    assert code_bits(INVITE_LENGTH) == pytest.approx(8 * math.log2(31))
    assert code_bits(4, "01") == 4.0


def test_code_bits_rejects_empty_alphabet() -> None:
    with pytest.raises(ValueError):
        code_bits(8, "")


def test_new_invite_code_shape() -> None:
    for _ in range(200):
        code = new_invite_code()
        assert len(code) == INVITE_LENGTH
        assert set(code) <= set(INVITE_ALPHABET)
    assert len(new_invite_code(12)) == 12
    with pytest.raises(ValueError):
        new_invite_code(0)


def test_new_invite_code_uses_whole_alphabet_roughly_uniformly() -> None:
    counts = Counter("".join(new_invite_code() for _ in range(2000)))
    assert set(counts) == set(INVITE_ALPHABET)
    expected = 16000 / 31
    # 16000 draws over 31 symbols: each count is ~516 +- 22; 40% off would be a biased generator.
    assert all(0.6 * expected < n < 1.4 * expected for n in counts.values())


def test_new_invite_codes_differ() -> None:
    assert len({new_invite_code() for _ in range(1000)}) == 1000


def test_normalize_forgives_case_spaces_and_dashes() -> None:
    assert normalize_invite_code("abcd-efgh") == "ABCDEFGH"
    assert normalize_invite_code("  AbCd EfGh \n") == "ABCDEFGH"
    assert normalize_invite_code("AB-CD-EF-GH") == "ABCDEFGH"


@pytest.mark.parametrize("text", ["ABCD-EFG0", "ABCD-EFGO", "ABCD-EFG1", "ABCD-EFGI", "ABCD-EFGL", "abcd-efgl"])
def test_normalize_refuses_look_alikes(text: str) -> None:
    assert normalize_invite_code(text) is None


@pytest.mark.parametrize(
    "text", ["", "ABCDEFG", "ABCDEFGHJ", "ABCD_EFGH", "ABCD.EFGH", "ＡＢＣＤＥＦＧＨ", "ABCDEFGſ", "-" * 100 + "ABCDEFGH"]
)
def test_normalize_refuses_non_codes(text: str) -> None:
    assert normalize_invite_code(text) is None


def test_normalize_other_length() -> None:
    assert normalize_invite_code("abc-def", length=6) == "ABCDEF"
    assert normalize_invite_code("abc-def") is None


@given(canonical_codes)
def test_canonical_code_normalizes_to_itself(code: str) -> None:
    assert normalize_invite_code(code) == code


@given(canonical_codes)
def test_formatted_code_normalizes_to_code(code: str) -> None:
    formatted = format_invite_code(code)
    assert normalize_invite_code(formatted) == code
    assert normalize_invite_code(formatted.lower()) == code


@given(st.text())
def test_junk_never_raises(text: str) -> None:
    result = normalize_invite_code(text)
    assert result is None or (len(result) == INVITE_LENGTH and set(result) <= set(INVITE_ALPHABET))


def test_format_groups_of_four() -> None:
    assert format_invite_code("ABCDEFGH") == "ABCD-EFGH"
    assert format_invite_code("ABCDEFGHJK") == "ABCD-EFGH-JK"


def test_hash_code_is_sha256_of_canonical_code() -> None:
    assert hash_code("ABCDEFGH") == hashlib.sha256(b"ABCDEFGH").hexdigest()
    assert hash_code("ABCDEFGH") != hash_code("ABCDEFGJ")


@pytest.mark.parametrize("text", ["abcdefgh", "ABCD-EFGH", "", "ABCDEFG0"])
def test_hash_code_refuses_non_canonical_input(text: str) -> None:
    with pytest.raises(ValueError):
        hash_code(text)


def test_pairing_code() -> None:
    codes = [new_pairing_code() for _ in range(500)]
    assert all(re.fullmatch(r"[0-9]{6}", c) for c in codes)
    assert len(set(codes)) > 400
    assert re.fullmatch(r"[0-9]{4}", new_pairing_code(4))
    with pytest.raises(ValueError):
        new_pairing_code(0)


def test_pairing_code_is_zero_padded() -> None:
    codes = {new_pairing_code(1) for _ in range(500)}
    assert codes == set("0123456789")


def test_new_id() -> None:
    ids = {new_id("RM") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"RM_[A-Za-z0-9_-]{22}", i) for i in ids)
