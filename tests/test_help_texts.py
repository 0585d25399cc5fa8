"""`tvapp ... --help` describes every option and argument of every command (README: "every command documents its
options"): no bare flag, no bare positional."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from tvapp.cli import build_parser


def parsers(parser: argparse.ArgumentParser, name: str = "tvapp") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from parsers(sub, f"{name} {sub_name}")


def test_every_option_and_argument_has_help() -> None:
    bare = []
    seen = 0
    for name, parser in parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            seen += 1
            if not (action.help or "").strip():
                bare.append(f"{name} {'/'.join(action.option_strings) or action.metavar or action.dest}")
    assert seen > 100
    assert bare == []
