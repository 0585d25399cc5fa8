"""The `tvapp` subcommands, one module each (serve, token, keys, bot, tv, demo, remote): wiring only.

tvapp.cli builds the top-level parser from every command's `add_parser(sub, common)` and calls the chosen one's
`main(args)` for its exit status. A command module imports only the standard library, tvapp.config and pure
tvapp.core modules at module level (so `tvapp --help` stays fast: tests/test_commands.py checks it) and reaches for
the parts it wires (tvapp.server, tvapp.client, tvapp.tv, tvapp.auth) inside its functions. Commands may import
anything; nothing but tvapp.cli imports a command.
"""
