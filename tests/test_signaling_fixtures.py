"""The signaling examples in tests/fixtures/signaling/messages.json hold for the Python protocol module.

The same file is the JS SDK's (tests/js/codec.test.js): one source of truth for both SDKs. Every
valid example parses and re-encodes to itself (defaults filled in); every invalid one is refused naming its field;
every message type of protocol v1 has an example in each direction it travels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tvapp.protocol import messages as m

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "signaling" / "messages.json").read_text())


def contained(expected: Any, actual: Any) -> bool:
    """Return whether `actual` has everything `expected` has (objects may have more keys: defaults)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and contained(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(map(contained, expected, actual))
    return bool(expected == actual)


def _ids(group: str) -> list[str]:
    return [example["name"] for example in FIXTURES[group]]


@pytest.mark.parametrize("example", FIXTURES["client"], ids=_ids("client"))
def test_client_examples_parse_and_round_trip(example: dict[str, Any]) -> None:
    parsed = m.parse_client_message(example["message"])
    assert parsed.TYPE == example["message"]["type"]
    assert contained(example["message"], json.loads(m.encode(parsed)))


@pytest.mark.parametrize("example", FIXTURES["server"], ids=_ids("server"))
def test_server_examples_parse_and_round_trip(example: dict[str, Any]) -> None:
    parsed = m.parse_server_message(example["message"])
    assert contained(example["message"], json.loads(m.encode(parsed)))


@pytest.mark.parametrize("example", FIXTURES["client_invalid"], ids=_ids("client_invalid"))
def test_invalid_client_examples_are_refused_naming_the_field(example: dict[str, Any]) -> None:
    with pytest.raises(m.ProtocolError) as refused:
        m.parse_client_message(example["message"])
    assert example["field"] in str(refused.value)


@pytest.mark.parametrize("example", FIXTURES["server_invalid"], ids=_ids("server_invalid"))
def test_invalid_server_examples_are_refused_naming_the_field(example: dict[str, Any]) -> None:
    with pytest.raises(m.ProtocolError) as refused:
        m.parse_server_message(example["message"])
    assert example["field"] in str(refused.value)


def test_every_message_type_has_an_example_in_each_direction() -> None:
    client = {example["message"]["type"] for example in FIXTURES["client"]}
    server = {example["message"]["type"] for example in FIXTURES["server"]}
    assert client == set(m.CLIENT_MESSAGE_TYPES)
    assert server == set(m.SERVER_MESSAGE_TYPES)
