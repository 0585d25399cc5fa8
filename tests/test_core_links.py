"""tvapp.core.links: invite links and server addresses read strictly, with reasons that never repeat the input."""

from __future__ import annotations

import pytest

from tvapp.core.links import (
    MAX_LINK_CHARS,
    MAX_URL_CHARS,
    InviteLink,
    LinkError,
    parse_code,
    parse_fingerprint,
    parse_link,
    parse_server,
    server_label,
)

FP = "sha256:" + ":".join(["AB"] * 32)


@pytest.mark.parametrize(("text", "base"), [
    ("https://core.example", "https://core.example"),
    ("https://Core.Example/", "https://core.example"),
    ("  http://192.168.1.9:8800  ", "http://192.168.1.9:8800"),
    ("192.168.1.9:8800", "http://192.168.1.9:8800"),
    ("localhost:8800", "http://localhost:8800"),
    ("core.example", "http://core.example"),
    ("https://[::1]:8443/", "https://[::1]:8443"),
    ("https://core.example/tvapp/", "https://core.example/tvapp"),
])  # fmt: skip
def test_server_addresses_become_base_urls(text: str, base: str) -> None:
    assert parse_server(text) == base


@pytest.mark.parametrize(("text", "problem"), [
    ("", "empty"),
    ("ftp://core.example", "only http"),
    ("ws://core.example", "only http"),
    ("mailto:ann@core.example", "host:port"),
    ("https://ann:pw@core.example", "user name or password"),
    ("https://ann@core.example", "user name or password"),
    ("https://core.example:0", "port"),
    ("https://core.example:", "port"),
    ("https://core.example:70000", "port"),
    ("https://-bad-.example", "host"),
    ("https://core.example/a b", "spaces"),
    ("https://core.example/\x00", "spaces"),
    ("https://cöre.example", "spaces"),
    ("https://core.example/%2e%2e/", "plain /path"),
    ("https://core.example/?code=ABCDEFGH", "no ?query"),
    ("https://core.example/#fp=x", "no ?query"),
])  # fmt: skip
def test_bad_server_addresses_are_refused_with_a_reason(text: str, problem: str) -> None:
    with pytest.raises(LinkError) as refused:
        parse_server(text)
    assert problem in str(refused.value)
    assert "ann" not in str(refused.value) and "pw" not in str(refused.value)


def test_limits() -> None:
    server = "https://core.example/" + "a" * (MAX_URL_CHARS - len("https://core.example/"))
    assert parse_server(server) == server
    with pytest.raises(LinkError, match=f"longer than {MAX_URL_CHARS}"):
        parse_server(server + "a")
    start = "https://core.example/?code=ABCDEFGH&pad="
    link = start + "a" * (MAX_LINK_CHARS - len(start))
    assert len(link) == MAX_LINK_CHARS and parse_link(link).code == "ABCDEFGH"
    with pytest.raises(LinkError, match=f"longer than {MAX_LINK_CHARS}"):
        parse_link(link + "a")


def test_links_codes_and_fingerprints() -> None:
    assert parse_link(f"https://core.example/?code=abcd-efgh#fp={FP.lower()}") == InviteLink(
        "https://core.example", "ABCDEFGH", FP)
    assert parse_link("core.example:8800/?x=1&code=ABCD%20EFGH") == InviteLink("http://core.example:8800", "ABCDEFGH")
    assert parse_fingerprint("SHA256:" + "ab" * 32) == FP
    assert parse_code(" abcd-efgh ") == "ABCDEFGH"
    for bad in ("sha1:" + "ab" * 20, "sha256:" + "ab" * 31, "sha256:" + "zz" * 32, "x" * 129):
        with pytest.raises(LinkError):
            parse_fingerprint(bad)
    for bad in ("ABCD-EFG0", "ABCDEFGHJ", "ÄBCDEFGH"):
        with pytest.raises(LinkError, match="not a code"):
            parse_code(bad)
    with pytest.raises(LinkError, match="https only"):
        parse_link(f"http://core.example/?code=ABCDEFGH#fp={FP}")
    with pytest.raises(LinkError, match="more than one #fp"):
        parse_link(f"https://core.example/?code=ABCDEFGH#fp={FP}&fp={FP}")


@pytest.mark.parametrize(("url", "label"), [
    ("https://core.example", "core.example"),
    ("https://core.example:443", "core.example"),
    ("http://core.example:80", "core.example"),
    ("https://core.example:8443", "core.example:8443"),
    ("http://127.0.0.1:8800", "127.0.0.1:8800"),
    ("https://[::1]:8443", "[::1]:8443"),
])  # fmt: skip
def test_server_labels_are_host_and_port_when_not_the_default(url: str, label: str) -> None:
    assert server_label(url) == label
