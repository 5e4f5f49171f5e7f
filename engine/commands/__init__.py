"""Subcommands of the ``heaplint`` CLI (registered in ``heaplint.engine.cli.COMMANDS``)."""
