"""The SDK's shape as tests: participants never import the room, REST paths built only in tvapp/client/rest.py,
small modules, and no task started in an ``__init__`` (the no-import-cycle rule is in test_layering.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from tvapp.testing.imports import import_graph

REPO_ROOT = Path(__file__).resolve().parent.parent
TVAPP = REPO_ROOT / "tvapp"
MAX_LINES = 500
# Programs that leave the SDK for tvapp/commands (issue 12, item 2), measured there.
PROGRAMS = ("remote.py", "remote_link.py")
# The TV's own endpoints (pairing, /v1/remote), another part's paths; and the one place the core's are built.
OWN_PATHS = ("tvapp/server/", "tvapp/tv/remote/", "tvapp/client/remote_link.py", "tvapp/client/rest.py")


def test_participants_never_see_the_room() -> None:
    graph = import_graph(TVAPP)
    for name in ("tvapp.client.participants", "tvapp.client.requests", "tvapp.client.events"):
        assert "tvapp.client.room" not in graph[name], name


def _v1_literals(path: Path) -> list[str]:
    """Return the string literals (and f-string starts) in `path` that begin a /v1 path, docstrings aside."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if node.value.startswith("/v1"):
                hits.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            parts = [p.value for p in node.values if isinstance(p, ast.Constant) and isinstance(p.value, str)]
            if any(part.startswith("/v1") for part in parts):
                hits.append("".join(parts))
    return hits


def test_rest_paths_are_built_only_in_the_rest_client() -> None:
    for path in sorted(TVAPP.rglob("*.py")):
        relative = path.relative_to(REPO_ROOT).as_posix()
        if relative.startswith(OWN_PATHS):
            continue
        assert not _v1_literals(path), f"{relative} builds a /v1 path by hand: {_v1_literals(path)}"


def test_sdk_modules_are_small_or_say_why_not() -> None:
    for path in sorted((TVAPP / "client").rglob("*.py")):
        if path.name in PROGRAMS and path.parent.name == "client":
            continue
        lines = len(path.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert lines <= MAX_LINES or "one piece" in doc, f"{path.relative_to(REPO_ROOT)} has {lines} lines"


def test_no_sdk_object_starts_a_task_in_init() -> None:
    for path in sorted((TVAPP / "client").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "__init__":
                calls = [c for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
                         and c.func.attr in ("create_task", "ensure_future", "start")]
                assert not calls, f"{path.relative_to(REPO_ROOT)}:{node.lineno} starts a task in __init__"
