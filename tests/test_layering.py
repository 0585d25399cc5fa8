"""Layering rules (shared/DESIGN.md, "Layers"): who may import whom inside tvapp, no import cycle anywhere, and
tvapp.core and tvapp.protocol import nothing with I/O and pass mypy --strict (tvapp.web too).

For the I/O rule each module is imported alone in a fresh interpreter, so a module cannot hide behind an import that
an earlier test (or pytest itself) already made. The who-imports-whom rules read the source (tvapp.testing.imports),
so an import inside a function or under ``if TYPE_CHECKING:`` counts too; each rule is a pure check over the import
graph, shown to catch a violation on a made-up graph as well as passing on the real one.
"""

import json
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tvapp.core
import tvapp.protocol
from tvapp.testing.imports import cycles, import_graph

REPO_ROOT = Path(__file__).resolve().parent.parent
TVAPP = REPO_ROOT / "tvapp"

# Each inner layer may import only these tvapp packages (itself included).
ALLOWED = {
    "tvapp.core": ("tvapp.core",),
    "tvapp.protocol": ("tvapp.protocol", "tvapp.core"),
    "tvapp.auth": ("tvapp.auth", "tvapp.core"),
    "tvapp.web": ("tvapp.web", "tvapp.core"),  # DESIGN.md: "web/ ... imports core only"
}
# Packages only the named importers may import (besides themselves).
RESERVED = {
    "tvapp.commands": ("tvapp.cli",),  # commands wire everything; only the CLI dispatches to them
    "tvapp.testing": (),  # helpers for tests and benchmarks; tvapp never needs them at run time
}

FORBIDDEN = frozenset(
    {
        "asyncio",
        "_asyncio",
        "sqlite3",
        "_sqlite3",
        "websockets",
        "aiortc",
        "av",
        "pygame",
        "zeroconf",
        "socket",
        "_socket",
        "ssl",
        "selectors",
        "uvicorn",
        "fastapi",
        "starlette",
    }
)


def pure_modules() -> list[str]:
    """Return every module and package under tvapp.core and tvapp.protocol."""
    names = []
    for package in (tvapp.core, tvapp.protocol):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            names.append(info.name)
    return sorted(names)


def test_discovery_finds_known_modules() -> None:
    assert {"tvapp.core", "tvapp.core.room", "tvapp.core.codes", "tvapp.protocol"} <= set(pure_modules())


@pytest.mark.parametrize("module", pure_modules())
def test_module_imports_no_io(module: str) -> None:
    program = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps(sorted(set(sys.modules) & set({sorted(FORBIDDEN)!r}))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_mypy_strict_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "tvapp/core", "tvapp/protocol", "tvapp/web"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _imports_of(path: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("server", ("tvapp.client", "tvapp.tv")), ("client", ("tvapp.server", "tvapp.tv")),
     ("tv", ("tvapp.server", "tvapp.testing")), ("rtc", ("tvapp.server", "tvapp.client", "tvapp.tv", "tvapp.testing")),
     ("web", ("tvapp.server", "tvapp.client", "tvapp.tv", "tvapp.testing", "tvapp.protocol", "tvapp.auth", "tvapp.rtc",
              "tvapp.config"))],
)  # fmt: skip
def test_parts_do_not_import_each_other(package: str, forbidden: tuple[str, ...]) -> None:
    for path in sorted((REPO_ROOT / "tvapp" / package).rglob("*.py")):
        bad = [name for name in _imports_of(path) if name.startswith(forbidden)]
        assert not bad, f"{path.relative_to(REPO_ROOT)} imports {bad}"


def test_aiortc_private_names_are_used_only_in_the_adapter() -> None:
    """The tvapp/rtc/internals package is the one place that reaches into aiortc's private attributes."""
    import re

    private = re.compile(r"_RTC\w+__\w+|\._send_rtcp_pli\b|\._send_keyframe\b|\._codecs\b|\b_data\b|get_host_addresses"
                         r"|\._check_list\b|\._early_checks\b|\._rx_srtp\b|\._rtp_router\b|\._setup_srtp\b"
                         r"|\._handle_rtc?p_data\b")
    for path in sorted((REPO_ROOT / "tvapp").rglob("*.py")):
        if path.parent == REPO_ROOT / "tvapp" / "rtc" / "internals":
            continue
        hits = [line.strip() for line in path.read_text().splitlines() if private.search(line)]
        assert not hits, f"{path.relative_to(REPO_ROOT)} reaches into aiortc: {hits}"


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Return "importer -> imported" for every import an inner layer (ALLOWED) may not make."""
    bad = []
    for layer, allowed in ALLOWED.items():
        for module in sorted(name for name in graph if _within(name, (layer,))):
            bad += [f"{module} -> {dep}" for dep in sorted(graph[module]) if not _within(dep, allowed)]
    return bad


def reserved_violations(graph: dict[str, set[str]]) -> list[str]:
    """Return "importer -> imported" for every import of a RESERVED package from outside its allowed importers."""
    bad = []
    for package, importers in RESERVED.items():
        for module in sorted(graph):
            if _within(module, (package, *importers)):
                continue
            bad += [f"{module} -> {dep}" for dep in sorted(graph[module]) if _within(dep, (package,))]
    return bad


@pytest.mark.parametrize(
    ("importer", "imported", "check"),
    [("tvapp.core.room", "tvapp.protocol.messages", layer_violations),
     ("tvapp.core.room", "tvapp", layer_violations),
     ("tvapp.protocol.messages", "tvapp.auth.keys", layer_violations),
     ("tvapp.protocol.messages", "tvapp.config", layer_violations),
     ("tvapp.auth.keys", "tvapp.protocol.fields", layer_violations),
     ("tvapp.auth", "tvapp.web.errors", layer_violations),
     ("tvapp.web.http", "tvapp.server.app", layer_violations),
     ("tvapp.web.guard", "tvapp.auth.keys", layer_violations),
     ("tvapp.server.app", "tvapp.commands.serve", reserved_violations),
     ("tvapp.tv.app", "tvapp.commands", reserved_violations),
     ("tvapp.client.room", "tvapp.testing.server", reserved_violations),
     ("tvapp.cli", "tvapp.testing", reserved_violations)],
)  # fmt: skip
def test_each_rule_catches_a_violation(importer: str, imported: str, check: Any) -> None:
    graph = {importer: {imported}, imported: set()}
    assert check(graph) == [f"{importer} -> {imported}"]


def test_the_rules_allow_what_design_allows() -> None:
    graph = {"tvapp.protocol.messages": {"tvapp.core.room", "tvapp.protocol.fields"}, "tvapp.auth.keys": {"tvapp.core"},
             "tvapp.web.http": {"tvapp.core.errors", "tvapp.web.errors"}, "tvapp.cli": {"tvapp.commands.serve"},
             "tvapp.commands.serve": {"tvapp.server.app", "tvapp.tv.app"}, "tvapp.testing.tv": {"tvapp.tv.app"},
             "tvapp.server.app": {"tvapp.auth.keys", "tvapp.web.http"}}
    assert layer_violations(graph) == [] and reserved_violations(graph) == []


def test_the_graph_sees_every_package_and_every_kind_of_import() -> None:
    graph = import_graph(TVAPP)
    assert {"tvapp.core", "tvapp.protocol", "tvapp.auth", "tvapp.web", "tvapp.commands", "tvapp.testing",
            "tvapp.cli"} <= set(graph)
    assert "tvapp.core.errors" in graph["tvapp.web.errors"]  # from tvapp.core.errors import ...
    assert "tvapp.config" in graph["tvapp.commands.serve"]  # from tvapp import config as config_mod


def test_inner_layers_import_only_what_design_allows() -> None:
    assert layer_violations(import_graph(TVAPP)) == []


def test_only_the_cli_imports_commands_and_nothing_imports_testing() -> None:
    assert reserved_violations(import_graph(TVAPP)) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_anywhere_in_tvapp() -> None:
    assert cycles(import_graph(TVAPP)) == []
