"""The `tvapp` subcommands, one module each (serve, token, keys, bot, tv, demo, remote): wiring only.

tvapp.cli builds the top-level parser and dispatches here. A command module imports only argparse and the
standard library at module level (so `tvapp --help` stays fast) and reaches for the parts it wires
(tvapp.server, tvapp.client, tvapp.tv, tvapp.auth) inside its functions. Commands may import anything; nothing
imports a command.
"""
