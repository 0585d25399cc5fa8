"""Find what should never be in a tvapp process's log: tracebacks, unhandled exceptions, ERROR lines.

`problems(lines)` groups a log into problem reports (a traceback with the line that announced it, or one
ERROR/CRITICAL line); `LogWindow` watches a ServerProcess's captured output from a mark on, so a test can
ask "what went wrong since I started sending?".
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Protocol

_STARTS = re.compile(r"Traceback \(most recent call last\)|Unhandled exception|Task exception was never retrieved"
                     r"|Exception in callback|\b(ERROR|CRITICAL)\b")
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def problems(lines: Iterable[str], ignore: Iterable[str] = ()) -> list[str]:
    """Return each problem in a log as one text: an ERROR/CRITICAL line or a traceback and what it says.

    Lines matching one of the `ignore` regular expressions are no problem (e.g. SDL's banner "CRITICAL: You are
    using the SDL disk i/o audio driver!", which a TV under test prints because it was told to).
    """
    skip = [re.compile(pattern) for pattern in ignore]
    found: list[str] = []
    current: list[str] | None = None
    for line in lines:
        if any(pattern.search(line) for pattern in skip):
            continue
        starts_entry = bool(_LOG_LINE.match(line)) or line.startswith("tvapp:")
        if current is not None and (starts_entry or not line.strip()):
            found.append("".join(current))
            current = None
        if current is not None:
            current.append(line)
        elif _STARTS.search(line):
            current = [line]
    if current is not None:
        found.append("".join(current))
    return found


_FRAME = re.compile(r'File "([^"]+)", line \d+, in (\S+)')


def signature(problem: str) -> str:
    """Return what identifies a problem: for a traceback "outermost function (file): exception: message",
    else its last line."""
    lines = [line.strip() for line in problem.splitlines() if line.strip()]
    if not lines:
        return ""
    frame = _FRAME.search(problem)
    if frame is None:
        return lines[-1]
    return f"{frame.group(2)} ({frame.group(1).rsplit('/', 1)[-1]}): {lines[-1]}"


class _Output(Protocol):
    output: "Sequence[str] | object"


class LogWindow:
    """The lines a ServerProcess printed since `mark()`.

    ServerProcess keeps its output in a bounded deque (older lines fall off), so a mark is a sentinel
    line appended to it, not an index: lines after the newest sentinel are "since the mark".
    """

    _ids = itertools.count(1)

    def __init__(self, server: _Output) -> None:
        self._output = server.output
        self._sentinel = ""
        self.mark()

    def mark(self) -> None:
        """Start a new window at the end of what was printed so far."""
        self._sentinel = f"\x00logscan mark {next(self._ids)}\n"
        self._output.append(self._sentinel)  # type: ignore[attr-defined]

    def lines(self) -> list[str]:
        """Return the lines printed since the mark (every kept line if the mark fell off the deque)."""
        kept = list(self._output)  # type: ignore[call-overload]
        for index in range(len(kept) - 1, -1, -1):
            if kept[index] == self._sentinel:
                return [line for line in kept[index + 1:] if not line.startswith("\x00logscan")]
        return [line for line in kept if not line.startswith("\x00logscan")]

    def problems(self) -> list[str]:
        """Return the problems (tracebacks, ERROR lines) printed since the mark."""
        return problems(self.lines())
