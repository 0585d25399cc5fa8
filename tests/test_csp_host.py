"""The page's Content-Security-Policy carries only the Host the guard validated, never a raw or repeated one.

On 58c9607 the guard checked the last Host of a repeated pair while the page wrote the first into its CSP, so
`Host: evil.example` followed by `Host: 127.0.0.1` was served 200 with `ws://evil.example` in the policy.
"""

from __future__ import annotations

import socket

import pytest

from tvapp.server.app import content_security_policy
from tvapp.testing.server import ServerProcess


def get_page(server: ServerProcess, host_lines: bytes) -> bytes:
    """Return the raw answer to GET / sent with exactly `host_lines` as its Host header(s)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n" + host_lines + b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def csp_of(answer: bytes) -> str:
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1")
    return next(line.split(":", 1)[1].strip() for line in head.split("\r\n")
                if line.lower().startswith("content-security-policy:"))


@pytest.mark.parametrize("evil_first", [True, False])
def test_a_repeated_host_never_reaches_the_page_or_its_csp(server: ServerProcess, evil_first: bool) -> None:
    own = server.url.removeprefix("http://").encode()
    pair = [b"Host: evil.example\r\n", b"Host: " + own + b"\r\n"]
    answer = get_page(server, b"".join(pair if evil_first else pair[::-1]))
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b'"bad_host"' in answer
    assert b"evil" not in answer.lower()


def test_the_csp_names_the_validated_host_rebuilt_from_its_parts(server: ServerProcess) -> None:
    port = server.url.rsplit(":", 1)[1]
    answer = get_page(server, f"Host: LOCALHOST:{port}\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200")
    assert f"connect-src 'self' ws://localhost:{port} wss://localhost:{port} http: https:;" in csp_of(answer)


@pytest.mark.parametrize("host", [None, "", "evil.example, 127.0.0.1", "127.0.0.1:80 ws://evil.example",
                                  "127.0.0.1;script-src *", "a@evil.example", "[::1]:99999"])
def test_no_websocket_source_from_a_host_that_does_not_parse(host: str | None) -> None:
    csp = content_security_policy(host)
    assert "connect-src 'self' http: https:;" in csp  # http(s): a live stream's playlist and segments (hls.js)
    assert "evil" not in csp and "*" not in csp


def test_an_ipv6_host_is_written_in_brackets() -> None:
    assert "ws://[::1]:8800 wss://[::1]:8800 http: https:;" in content_security_policy("[::1]:8800")
