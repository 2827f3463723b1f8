"""One record per method (hypermask/methods/record.py), discovered by hypermask.methods: NAME.py holds RECORD."""
