"""Device credentials: the long-lived secret a paired phone presents, and the public id it is listed under.

A credential is "tvd_" plus url-safe base64 of the random bytes the caller passes (secrets.token_bytes(32)),
so a leak scanner can recognise one. The store keeps only `credential_hash(credential)`; a phone presents
the credential and `credential_matches` compares its hash with the stored one in constant time. The
device id ("dev_" plus 12 characters) is not secret: it names the device when listing or revoking it.
"""

import base64
import hashlib
import hmac

CREDENTIAL_PREFIX = "tvd_"
DEVICE_ID_PREFIX = "dev_"
MIN_CREDENTIAL_BYTES = 32
DEVICE_ID_CHARS = 12
# 12 base64 characters carry 72 bits: 9 bytes fill them exactly, with no padding.
_DEVICE_ID_BYTES = 9


def _urlsafe(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def new_credential(random_bytes: bytes) -> str:
    """Return a device credential made from `random_bytes` (pass secrets.token_bytes(32))."""
    if len(random_bytes) < MIN_CREDENTIAL_BYTES:
        raise ValueError(f"a credential needs at least {MIN_CREDENTIAL_BYTES} random bytes, got {len(random_bytes)}")
    return CREDENTIAL_PREFIX + _urlsafe(random_bytes)


def credential_hash(credential: str) -> str:
    """Return the sha256 hex digest of `credential`, which is what the store keeps."""
    return hashlib.sha256(credential.encode("utf-8")).hexdigest()


def credential_matches(credential: str, stored_hash: str) -> bool:
    """Return whether `credential` hashes to `stored_hash`, comparing in constant time."""
    return hmac.compare_digest(credential_hash(credential).encode("ascii"), stored_hash.encode("utf-8"))


def device_id(random_bytes: bytes) -> str:
    """Return a public device id, "dev_" and 12 url-safe characters, made from `random_bytes` (9 or more)."""
    if len(random_bytes) < _DEVICE_ID_BYTES:
        raise ValueError(f"a device id needs at least {_DEVICE_ID_BYTES} random bytes, got {len(random_bytes)}")
    return DEVICE_ID_PREFIX + _urlsafe(random_bytes[:_DEVICE_ID_BYTES])
