"""Coverage per package of hypermask/: the table of .ci/run's coverage step (docs/development.md).

    python .ci/coverage_by_package.py [--data-file .coverage] [--markdown]

Reads the data a `pytest --cov` run left (every file of hypermask/ is in it, the ones no test
imported at 0 %) and prints one row per package (config, data, engine, ..., methods with its
shared/ and specs/) and per top-level module (events.py, nets.py, ...): statements, missed
statements, branches, partly-taken branches and coverage's percentage (covered statements and
branches over all of them, coverage.py's own formula, so the total row equals `coverage report`'s).
Exits 2 if the total is under the floor, `fail_under` of [tool.coverage.report] in pyproject.toml
(the one number; pytest-cov checks the same one).

Independent of hypermask: only the `coverage` package, through its public API (the JSON report).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import coverage

FIELDS = ("num_statements", "missing_lines", "num_branches", "num_partial_branches", "covered_lines")


def package_of(path: str) -> str:
    """hypermask/methods/shared/base.py -> methods; hypermask/nets.py -> nets.py."""
    parts = Path(path).parts
    inner = parts[parts.index("hypermask") + 1 :] if "hypermask" in parts else parts
    return inner[0] if len(inner) > 1 else inner[-1]


def percent(row: dict[str, int]) -> float:
    covered = row["covered_lines"] + row["covered_branches"]
    total = row["num_statements"] + row["num_branches"]
    return 100.0 * covered / total if total else 100.0


def by_package(cov: coverage.Coverage) -> dict[str, dict[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(out), ignore_errors=False)
        files = json.loads(out.read_text())["files"]
    rows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for path, info in files.items():
        summary = info["summary"]
        row = rows[package_of(path)]
        row["files"] += 1
        for key in (*FIELDS, "covered_branches"):
            row[key] += int(summary.get(key, 0))
    return rows


def render(rows: dict[str, dict[str, int]], markdown: bool) -> tuple[str, float]:
    total: dict[str, int] = defaultdict(int)
    for row in rows.values():
        for key, value in row.items():
            total[key] += value
    # packages first, then the top-level modules, each alphabetically
    names = sorted(rows, key=lambda n: (n.endswith(".py"), n))
    header = ("package", "files", "stmts", "miss", "branch", "part", "cover")
    lines = [
        (
            name,
            str(r["files"]),
            str(r["num_statements"]),
            str(r["missing_lines"]),
            str(r["num_branches"]),
            str(r["num_partial_branches"]),
            f"{percent(r):.1f}%",
        )
        for name, r in ((n, rows[n]) for n in names)
    ]
    total_row = (
        "TOTAL",
        str(total["files"]),
        str(total["num_statements"]),
        str(total["missing_lines"]),
        str(total["num_branches"]),
        str(total["num_partial_branches"]),
        f"{percent(total):.1f}%",
    )
    if markdown:
        out = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---:" if i else "---" for i in range(7)) + "|",
        ]
        out += ["| " + " | ".join(cells) + " |" for cells in [*lines, total_row]]
    else:
        widths = [max(len(c[i]) for c in [header, *lines, total_row]) for i in range(7)]
        fmt = lambda cells: "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )
        rule = "-" * len(fmt(header))
        out = [fmt(header), rule, *map(fmt, lines), rule, fmt(total_row)]
    return "\n".join(out), percent(total)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-file", default=".coverage", help="coverage's data file (default .coverage)")
    ap.add_argument("--markdown", action="store_true", help="a Markdown table instead of plain columns")
    args = ap.parse_args(argv)
    if not Path(args.data_file).is_file():
        print(f"no coverage data at {args.data_file}: run `python -m pytest --cov` first", file=sys.stderr)
        return 2
    cov = coverage.Coverage(data_file=args.data_file)
    cov.load()
    table, total = render(by_package(cov), args.markdown)
    print(table)
    floor = float(cov.get_option("report:fail_under") or 0)
    precision = int(cov.get_option("report:precision") or 0)
    # coverage's own rule: the total, rounded to the report's precision, is under the floor
    if round(total, precision) < floor:
        print(f"coverage {total:.1f}% is under the floor of {floor:g}% (pyproject.toml, fail_under)")
        return 2
    print(f"floor {floor:g}% (pyproject.toml, [tool.coverage.report] fail_under): met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
