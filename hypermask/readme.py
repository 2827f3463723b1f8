"""The README's result tables come from the pipeline, never typed by hand.

The README holds one block per suite between `<!-- results: SUITE -->` and
`<!-- end results: SUITE -->`. `hypermask readme SUITE` copies RESULTS/tables/SUITE.md (with
the machine, threads, torch version, commit and lock it came from) into that block;
`hypermask readme SUITE --check` compares the block's means with RESULTS/tables/SUITE.csv,
within a tolerance, and fails where they differ (CI runs it after the demo suite).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .config import ConfigError
from .storage import atomic_write_text

CHECKED = ("average_accuracy", "bwt")  # the tables (tables.TABLES columns) whose means are compared


def _block(text: str, suite: str, readme: Path) -> tuple[int, int]:
    begin, end = f"<!-- results: {suite} -->", f"<!-- end results: {suite} -->"
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        raise ConfigError(f"{readme}: no block `{begin}` ... `{end}` to hold the {suite} tables")
    return i + len(begin), j


def update(readme: Path, suite: str, results: Path) -> None:
    md = results / "tables" / f"{suite}.md"
    try:
        table = md.read_text()
    except OSError:
        raise ConfigError(f"{md}: no table; run `hypermask tables {suite}` (or the pipeline) first") from None
    table = table.split("\n", 2)[2] if table.startswith("# ") else table  # the README has its own heading
    text = readme.read_text()
    i, j = _block(text, suite, readme)
    atomic_write_text(readme, text[:i] + "\n" + table.strip() + "\n" + text[j:])


def _sections(text: str) -> dict[str, dict[str, dict[str, str]]]:
    """The block's tables: title -> method -> benchmark -> cell."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    title, lines = None, []
    for line in [*text.splitlines(), ""]:
        if line.startswith("**") and line.rstrip().endswith("**"):
            title, lines = line.strip().strip("*"), []
        elif line.startswith("|") and title is not None:
            lines.append(line)
        elif lines and title is not None:
            header = [c.strip() for c in lines[0].strip("|").split("|")]
            rows = ([c.strip() for c in row.strip("|").split("|")] for row in lines[2:])
            out[title] = {cells[0]: dict(zip(header[1:], cells[1:])) for cells in rows}
            title, lines = None, []
    return out


def _mean(cell: str) -> float:
    m = re.match(r"\s*\**([-+−]?\d+(?:\.\d+)?)", cell)
    if not m:
        return float("nan")
    return float(m.group(1).replace("−", "-"))


def _seeds(cell: str, expected: str) -> str:
    m = re.search(r"\((\d+/\d+)\)\s*$", cell)
    return m.group(1) if m else expected.split("/")[1] + "/" + expected.split("/")[1]


def check(readme: Path, suite: str, results: Path, tolerance: float) -> list[str]:
    """The differences (beyond `tolerance` percentage points, or in the seeds found) between
    the README's block and the suite's table; empty when the README says what the pipeline
    produced."""
    from .tables import TABLES

    text = readme.read_text()
    i, j = _block(text, suite, readme)
    sections = _sections(text[i:j])
    csv = results / "tables" / f"{suite}.csv"
    try:
        df = pd.read_csv(csv, dtype={"missing": str})
    except (OSError, ValueError):
        raise ConfigError(f"{csv}: no table; run `hypermask tables {suite}` (or the pipeline) first") from None
    problems = []
    for table in (t for t in TABLES if t.column in CHECKED):
        said = sections.get(table.title)
        if said is None:
            problems.append(f"no table '{table.title}' in the README's {suite} block")
            continue
        for _, r in df.iterrows():
            cell = said.get(str(r["method"]), {}).get(str(r["benchmark"]))
            if cell is None:
                problems.append(f"{r['experiment']}: not in the README's '{table.title}'")
                continue
            if _seeds(cell, r["seeds"]) != r["seeds"]:
                problems.append(f"{r['experiment']}: seeds {_seeds(cell, r['seeds'])} in the README, {r['seeds']} produced")
            got = float(r[f"{table.column}_mean"])
            if not abs(_mean(cell) - got) <= tolerance:
                problems.append(f"{r['experiment']}: {table.column} {cell} in the README, {got:.2f} produced here")
        pairs = {(m, b) for m, cells in said.items() for b in cells}
        for m, b in pairs - set(zip(df["method"].astype(str), df["benchmark"].astype(str))):
            problems.append(f"{b}/{m}: in the README's '{table.title}' but not in the suite")
    return problems
