"""python -m hypermask.cli"""

from hypermask.cli.process import entry

entry()
