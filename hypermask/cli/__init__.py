"""The `hypermask` command line: main.py runs a command (commands.py; its arguments: parser.py),
process.py is the `hypermask` executable (the process settings it gives itself first)."""

from hypermask.cli.main import main
from hypermask.cli.process import entry

__all__ = ["entry", "main"]
