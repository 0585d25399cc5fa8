"""Shared fixtures: real core servers on ephemeral 127.0.0.1 ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tvapp.testing.server import ServerProcess


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with default settings, shared by the tests that do not need their own."""
    with ServerProcess(tmp_path_factory.mktemp("server")) as srv:
        yield srv


@pytest.fixture
def make_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with their own settings (env overrides); all are stopped after the test."""
    started: list[ServerProcess] = []

    def make(**env: str) -> ServerProcess:
        srv = ServerProcess(tmp_path_factory.mktemp("server"), env=env).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()
