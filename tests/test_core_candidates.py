"""Tests for tvapp.core.candidates: reading trickled ICE candidate lines (RFC 8839 section 5.1)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tvapp.core.candidates import CandidateError, IceCandidate, parse_candidate

# what Chromium, Firefox and aiortc trickle
CHROME_HOST = "candidate:2934317234 1 udp 2122260223 192.168.1.20 54321 typ host generation 0 ufrag Ab12 network-id 1"
CHROME_MDNS = ("candidate:1840965416 1 udp 2122194687 3b6c9c0e-4d1e-4c0e-9f1a-2d0b7f2d7f4e.local 61234 typ host "
               "generation 0 ufrag Ab12 network-id 2")
CHROME_TCP = "candidate:3 1 tcp 1518280447 192.168.1.20 9 typ host tcptype active generation 0 ufrag Ab12"
FIREFOX_SRFLX = "candidate:1 1 UDP 1686052863 203.0.113.5 40000 typ srflx raddr 192.168.1.20 rport 40000"
RELAY_V6 = "candidate:5 1 udp 41885695 2001:db8::7 3478 typ relay raddr :: rport 0"


def test_a_host_candidate_is_read_field_by_field() -> None:
    assert parse_candidate(CHROME_HOST) == IceCandidate(
        foundation="2934317234", component=1, transport="udp", priority=2122260223, address="192.168.1.20",
        port=54321, type="host", extensions=(("generation", "0"), ("ufrag", "Ab12"), ("network-id", "1")))


@pytest.mark.parametrize("line", [CHROME_HOST, CHROME_MDNS, CHROME_TCP, FIREFOX_SRFLX, RELAY_V6])
def test_what_browsers_send_is_accepted(line: str) -> None:
    parsed = parse_candidate(line)
    assert parsed.component == 1 and parsed.transport in ("udp", "tcp")


def test_the_prefix_is_optional_and_related_address_tcptype_are_read() -> None:
    srflx = parse_candidate(FIREFOX_SRFLX[len("candidate:"):])
    assert (srflx.transport, srflx.type, srflx.related_address, srflx.related_port) == ("udp", "srflx",
                                                                                      "192.168.1.20", 40000)
    assert parse_candidate(CHROME_TCP).tcp_type == "active"
    assert parse_candidate(CHROME_MDNS).address.endswith(".local")


@pytest.mark.parametrize(("line", "says"), [
    ("candidate:garbage", "fewer than the 8 fields"),
    ("", "empty"),
    ("candidate:", "empty"),
    ("1 1 udp 1 10.0.0.1 9 typ", "fewer than the 8 fields"),
    ("f@o 1 udp 1 10.0.0.1 9 typ host", "foundation"),
    ("x" * 33 + " 1 udp 1 10.0.0.1 9 typ host", "foundation"),
    ("1 0 udp 1 10.0.0.1 9 typ host", "component"),
    ("1 257 udp 1 10.0.0.1 9 typ host", "component"),
    ("1 one udp 1 10.0.0.1 9 typ host", "component"),
    ("1 1 sctp 1 10.0.0.1 9 typ host", "transport"),
    ("1 1 udp -1 10.0.0.1 9 typ host", "priority"),
    ("1 1 udp 4294967296 10.0.0.1 9 typ host", "priority"),
    ("1 1 udp 99999999999 10.0.0.1 9 typ host", "priority"),
    ("1 1 udp 1 example.com 9 typ host", "address"),
    ("1 1 udp 1 10.0.0.256 9 typ host", "address"),
    ("1 1 udp 1 .local 9 typ host", "address"),
    ("1 1 udp 1 10.0.0.1 65536 typ host", "port"),
    ("1 1 udp 1 10.0.0.1 +9 typ host", "port"),
    ("1 1 udp 1 10.0.0.1 9 type host", "'typ'"),
    ("1 1 udp 1 10.0.0.1 9 typ bogus", "type"),
    ("1 1 udp 1 10.0.0.1 9 typ host raddr", "no value"),
    ("1 1 udp 1 10.0.0.1 9 typ srflx raddr evil.example rport 1", "related address"),
    ("1 1 udp 1 10.0.0.1 9 typ srflx raddr 10.0.0.2 rport 70000", "related port"),
    ("1 1 tcp 1 10.0.0.1 9 typ host tcptype sideways", "tcptype"),
    ("1 1 udp 1 10.0.0.1 9 typ host x " + "y" * 257, "too long"),
    ("1 1 udp 1 10.0.0.1\x00 9 typ host", "printable ASCII"),
    ("1 1 udp 1 10.0.0.1 9 typ höst", "printable ASCII"),
])  # fmt: skip
def test_bad_lines_are_refused_saying_what_is_wrong(line: str, says: str) -> None:
    with pytest.raises(CandidateError, match=says) as refused:
        parse_candidate(line)
    assert "evil" not in str(refused.value)  # the message never echoes the input


@given(st.text(max_size=200))
def test_any_text_is_read_or_refused_with_candidate_error_only(line: str) -> None:
    try:
        parsed = parse_candidate(line)
    except CandidateError:
        return
    assert 1 <= parsed.component <= 256 and 0 <= parsed.port <= 65535 and parsed.type in ("host", "srflx", "prflx",
                                                                                         "relay")


@given(st.lists(st.sampled_from(["candidate:1", "1", "udp", "tcp", "2122260223", "127.0.0.1", "::1", "a.local",
                                 "9", "typ", "host", "relay", "raddr", "rport", "tcptype", "active", "generation",
                                 "-1", "99999999999", "0"]), max_size=14).map(" ".join))
def test_lines_made_of_candidate_words_are_read_or_refused_with_candidate_error_only(line: str) -> None:
    try:
        parse_candidate(line)
    except CandidateError:
        pass
