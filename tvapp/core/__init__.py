"""Pure logic: no I/O, no clocks, no event loop. Time and randomness sources come in as arguments.

Layout math, active-speaker detection, room state machine and limits, token claim checks,
invite/pairing codes and attempt limiting live here; adapters elsewhere act on the decisions.
"""
