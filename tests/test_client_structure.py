"""The SDK's shape as tests: no import cycle anywhere in tvapp (type-only imports included), REST paths built only
in tvapp/client/rest.py, small modules, and no task started in an ``__init__``."""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TVAPP = REPO_ROOT / "tvapp"
MAX_LINES = 500
# Programs that leave the SDK for tvapp/commands (issue 12, item 2), measured there.
PROGRAMS = ("remote.py", "remote_link.py")
# The TV's own endpoints (pairing, /v1/remote), another part's paths; and the one place the core's are built.
OWN_PATHS = ("tvapp/server/", "tvapp/tv/remote/", "tvapp/client/remote_link.py", "tvapp/client/rest.py")


def _modules() -> dict[str, Path]:
    modules = {}
    for path in TVAPP.rglob("*.py"):
        name = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def _import_graph() -> dict[str, set[str]]:
    """Return each tvapp module's imports of other tvapp modules, wherever they are (TYPE_CHECKING included).

    ``from package import module`` counts as importing the module, not the package's ``__init__`` (which every
    import of a submodule runs first anyway).
    """
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    deps.add(full if full in modules else node.module)
        graph[name] = {dep for dep in deps if dep in modules and dep != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_anywhere_in_tvapp() -> None:
    assert _cycles(_import_graph()) == []


def test_participants_never_see_the_room() -> None:
    graph = _import_graph()
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
