"""Invite codes, pairing codes and random ids.

An invite code is read aloud or copied off a TV screen and typed on a phone, so its alphabet leaves out
the characters people confuse (0/O, 1/I/L). Input is forgiving about case, spaces and dashes and strict
about everything else: a character outside the alphabet means "not a code", never a guess at what was meant.
The server stores only `hash_code(code)`, never the code itself.
"""

import hashlib
import math
import secrets

INVITE_ALPHABET: str = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
INVITE_LENGTH: int = 8
DISPLAY_GROUP: int = 4
SEPARATORS: frozenset[str] = frozenset(" \t\r\n-")

# Longest text worth looking at: a code of INVITE_LENGTH with generous separators around it.
_MAX_INPUT_CHARS = 64
_ALPHABET_SET = frozenset(INVITE_ALPHABET)


def new_invite_code(length: int = INVITE_LENGTH) -> str:
    """Return a new invite code drawn uniformly from INVITE_ALPHABET."""
    if length < 1:
        raise ValueError(f"invite code length must be at least 1, got {length}")
    return "".join(secrets.choice(INVITE_ALPHABET) for _ in range(length))


def normalize_invite_code(text: str, length: int = INVITE_LENGTH) -> str | None:
    """Return the canonical code typed as `text`, or None when it cannot be an invite code."""
    if len(text) > _MAX_INPUT_CHARS or not text.isascii():
        return None
    code = "".join(ch for ch in text if ch not in SEPARATORS).upper()
    if len(code) != length or not _ALPHABET_SET.issuperset(code):
        return None
    return code


def format_invite_code(code: str) -> str:
    """Return the code in dash-separated groups of four for display, e.g. "ABCD-EFGH"."""
    return "-".join(code[i : i + DISPLAY_GROUP] for i in range(0, len(code), DISPLAY_GROUP))


def code_bits(length: int, alphabet: str = INVITE_ALPHABET) -> float:
    """Return the entropy in bits of a uniform random code of `length` symbols from `alphabet`."""
    symbols = len(set(alphabet))
    if symbols == 0:
        raise ValueError("alphabet must not be empty")
    if length < 0:
        raise ValueError(f"length must not be negative, got {length}")
    return length * math.log2(symbols)


def hash_code(code: str) -> str:
    """Return the sha256 hex digest of a canonical invite code, the key under which it is stored."""
    if not code or not _ALPHABET_SET.issuperset(code):
        raise ValueError("hash_code takes a canonical invite code; normalize the input first")
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def new_pairing_code(digits: int = 6) -> str:
    """Return a new zero-padded decimal pairing code with `digits` uniform random digits."""
    if digits < 1:
        raise ValueError(f"pairing code must have at least 1 digit, got {digits}")
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def new_id(prefix: str) -> str:
    """Return a new random id such as "RM_" followed by 22 url-safe characters (128 bits)."""
    return f"{prefix}_{secrets.token_urlsafe(16)}"
