"""From runs to what a reader sees: the suites' tables (tables.py) with their statistics (stats.py)
and figures (plots.py), the claims checked against them (claims.py), and the README's and docs'
generated blocks (readme.py, speed_blocks.py).
"""
