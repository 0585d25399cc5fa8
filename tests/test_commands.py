"""The `tvapp` command's shape: one module per subcommand in tvapp.commands, nothing else imports them, and
`tvapp --help` stays light (no SDK, server, TV or media library imported just to print help)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tvapp.cli import COMMANDS, build_parser, command_module

REPO_ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("aiortc", "av", "pygame", "fastapi", "uvicorn", "websockets", "zeroconf", "numpy", "tvapp.client",
         "tvapp.server", "tvapp.tv", "tvapp.auth")


def test_every_subcommand_is_a_module_with_a_parser_and_a_main() -> None:
    assert set(COMMANDS) == {"serve", "token", "keys", "bot", "tv", "demo", "remote", "compose"}
    for name in COMMANDS:
        module = command_module(name)
        assert callable(module.add_parser) and callable(module.main), name
    assert build_parser().parse_args(["keys", "list"]).command == "keys"


def test_only_the_cli_imports_the_commands() -> None:
    for path in sorted((REPO_ROOT / "tvapp").rglob("*.py")):
        relative = path.relative_to(REPO_ROOT / "tvapp")
        if relative.parts[0] == "commands" or relative.name in ("cli.py", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            bad = [n for n in names if n == "tvapp.cli" or n == "tvapp.commands" or n.startswith("tvapp.commands.")]
            assert not bad, f"tvapp/{relative} imports {bad}"


@pytest.mark.parametrize("words", [[], ["tv"], ["remote", "send"], ["bot"]])
def test_help_imports_nothing_heavy(words: list[str]) -> None:
    program = (
        "import json, sys\n"
        "from tvapp.cli import main\n"
        "try:\n"
        f"    main({[*words, '--help']!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(heavy))))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
