"""Counting what a guard refused, and deciding when to say so in the log: at most once per interval per kind.

Input from the network that a guard drops (an empty datagram, a REMB that lies about its length, an answer
that cannot be applied) must leave a trace an operator can read, but a stranger who sends a million of them
must not write a million log lines. `DropCounter.drop(kind, now)` counts one drop and returns a `DropReport`
when the caller should log: the first drop of a kind at once, then at most one report per `interval_s` for
that kind, carrying how many drops it stands for. Drops between two reports are never lost from `totals()`.

Time is an argument (seconds from any monotonic clock); no I/O.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class DropReport:
    """What to log about one kind of drop: how many since the last report, and how many ever."""

    kind: str
    count: int
    total: int


@dataclass(slots=True)
class _Kind:
    total: int = 0
    unreported: int = 0
    reported_at: float | None = None


@dataclass(slots=True)
class DropCounter:
    """Counts drops per kind and lets one report per kind through per `interval_s` (the first at once)."""

    interval_s: float = 60.0
    _kinds: dict[str, _Kind] = field(default_factory=dict)

    def drop(self, kind: str, now: float) -> DropReport | None:
        """Count one drop of `kind` at `now`; return a report when one is due, else None."""
        state = self._kinds.get(kind)
        if state is None:
            state = self._kinds[kind] = _Kind()
        state.total += 1
        state.unreported += 1
        if state.reported_at is not None and now - state.reported_at < self.interval_s:
            return None
        report = DropReport(kind, state.unreported, state.total)
        state.unreported = 0
        state.reported_at = now
        return report

    def totals(self) -> dict[str, int]:
        """Return how many drops of each kind were counted so far."""
        return {kind: state.total for kind, state in self._kinds.items()}
