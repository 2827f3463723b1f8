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

CHECKED = (("accuracy", "average_accuracy_mean"), ("BWT", "bwt_mean"))


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


def _readme_rows(text: str) -> dict[str, dict[str, str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    if len(lines) < 3:
        return {}
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return {cells[0]: dict(zip(header, cells))
            for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])}


def _mean(cell: str) -> float:
    m = re.match(r"\s*([-+−]?\d+(?:\.\d+)?)", cell)
    if not m:
        return float("nan")
    return float(m.group(1).replace("−", "-"))


def check(readme: Path, suite: str, results: Path, tolerance: float) -> list[str]:
    """The differences (beyond `tolerance` percentage points) between the README's block and
    the suite's table; empty when the README says what the pipeline produced."""
    text = readme.read_text()
    i, j = _block(text, suite, readme)
    rows = _readme_rows(text[i:j])
    csv = results / "tables" / f"{suite}.csv"
    try:
        df = pd.read_csv(csv, dtype={"missing": str})
    except (OSError, ValueError):
        raise ConfigError(f"{csv}: no table; run `hypermask tables {suite}` (or the pipeline) first") from None
    problems = []
    for _, r in df.iterrows():
        row = rows.get(str(r["experiment"]))
        if row is None:
            problems.append(f"{r['experiment']}: not in the README's {suite} block")
            continue
        if row.get("seeds") != r["seeds"]:
            problems.append(f"{r['experiment']}: seeds {row.get('seeds')} in the README, {r['seeds']} produced")
        for label, col in CHECKED:
            said, got = _mean(row.get(label, "")), float(r[col])
            if not abs(said - got) <= tolerance:
                problems.append(f"{r['experiment']}: {label} {said} in the README, {got:.2f} produced here")
    for name in set(rows) - set(df["experiment"].astype(str)):
        problems.append(f"{name}: in the README's {suite} block but not in the suite")
    return problems
