"""The zeroconf TXT record as data: exactly the allowed keys, decoded back as written, names cut to one DNS label."""

from __future__ import annotations

from tvapp.protocol.discovery import SERVICE_TYPE, TXT_KEYS, read_txt, service_label, txt_record


def test_txt_record_holds_exactly_the_allowed_keys_and_reads_back() -> None:
    txt = txt_record("0123456789abcdef", "Den TV", "room", True)
    assert set(txt) == TXT_KEYS
    said = read_txt({k.encode(): v.encode() for k, v in txt.items()}, f"Den TV.{SERVICE_TYPE}")
    assert (said.friendly_name, said.instance_id, said.state, said.pairing_open) == ("Den TV", "0123456789abcdef",
                                                                                       "room", True)


def test_read_txt_falls_back_to_the_service_name_and_tolerates_empty_values() -> None:
    said = read_txt({b"pair": None}, f"Kitchen.{SERVICE_TYPE}")
    assert said.friendly_name == "Kitchen" and not said.pairing_open and said.state == ""


def test_service_label_keeps_whole_characters_within_63_bytes() -> None:
    assert service_label("é" * 40).encode() == ("é" * 31).encode()
    assert service_label("   ") == "tvapp"
