"""The TV's zeroconf advertisement as data: the service type and what its TXT record may hold.

Shared by the TV (tvapp.tv.advertise registers it) and the phone side (tvapp.client.discovery reads it).
The TXT record carries only the TXT version, the protocol version, a random instance id (new at every start),
the friendly name, the state (idle / room) and whether pairing is open: nothing secret or personal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SERVICE_TYPE = "_tvapp._tcp.local."
TXT_VERSION = "1"
PROTOCOL_VERSION = "1"
TXT_KEYS = frozenset({"txtvers", "proto", "id", "name", "state", "pair"})
MAX_NAME_BYTES = 63  # a DNS label


def service_label(name: str) -> str:
    """Return `name` cut to one DNS label (63 bytes, whole characters), "tvapp" if nothing is left."""
    data = name.encode()[:MAX_NAME_BYTES]
    return data.decode(errors="ignore").strip() or "tvapp"


def txt_record(instance_id: str, friendly_name: str, state: str, pairing_open: bool) -> dict[str, str]:
    """Return the TXT record's fields (exactly TXT_KEYS)."""
    return {"txtvers": TXT_VERSION, "proto": PROTOCOL_VERSION, "id": instance_id, "name": service_label(friendly_name),
            "state": state, "pair": "1" if pairing_open else "0"}


@dataclass(frozen=True)
class Advertised:
    """What a TV's TXT record says."""

    friendly_name: str
    instance_id: str
    state: str
    pairing_open: bool
    txt: dict[str, str]


def read_txt(properties: Mapping[bytes, bytes | None], service: str) -> Advertised:
    """Decode a TXT record as zeroconf hands it over (bytes keys and values); the service name is the fallback name."""
    txt = {k.decode(errors="replace"): (v or b"").decode(errors="replace") for k, v in properties.items()}
    return Advertised(friendly_name=txt.get("name", service.removesuffix("." + SERVICE_TYPE)),
                      instance_id=txt.get("id", ""), state=txt.get("state", ""), pairing_open=txt.get("pair") == "1",
                      txt=txt)
