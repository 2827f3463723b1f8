"""The result tables in README.md and the docs come from the pipeline, never typed by hand.

A page holds a suite's tables between `<!-- results: SUITE -->` and `<!-- end results: SUITE -->`
(docs/results.md: every table) or its headline between `<!-- headline: SUITE -->` and
`<!-- end headline: SUITE -->` (README.md: average accuracy and BWT). `hypermask readme SUITE`
copies RESULTS/tables/SUITE.md (with the machine, threads, torch version, commit and lock it
came from) into every such block of the pages (README.md and docs/*.md, or the one given);
`hypermask readme SUITE --check` compares each block's means with RESULTS/tables/SUITE.csv,
within a tolerance, and fails where they differ (CI runs it after the default suite).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hypermask.config import ConfigError
from hypermask.records.storage import atomic_write_text

CHECKED = ("average_accuracy", "bwt")  # the tables (tables.TABLES columns) whose means are compared
KINDS = ("results", "headline")  # every table / the CHECKED ones only


def pages(root: Path) -> list[Path]:
    """The pages that may hold blocks: README.md and the docs site's pages."""
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.is_file()]


def _find(text: str, suite: str, kind: str) -> tuple[int, int] | None:
    begin, end = f"<!-- {kind}: {suite} -->", f"<!-- end {kind}: {suite} -->"
    i, j = text.find(begin), text.find(end)
    return None if i < 0 or j < i else (i + len(begin), j)


def blocks(paths: list[Path], suite: str) -> list[tuple[Path, str]]:
    """(page, kind) of every block of `suite`; ConfigError when there is none."""
    found = [(p, k) for p in paths for k in KINDS if _find(p.read_text(), suite, k)]
    if not found:
        raise ConfigError(
            f"{', '.join(map(str, paths))}: no block `<!-- results: {suite} -->` ... "
            f"`<!-- end results: {suite} -->` (or `headline:`) to hold the {suite} tables"
        )
    return found


def headline(table: str) -> str:
    """A table's provenance line and its CHECKED sections (average accuracy, BWT)."""
    from hypermask.reporting.tables import TABLES

    keep = {t.title for t in TABLES if t.column in CHECKED}
    parts = re.split(r"(?m)^(?=### |\*\*[^\n]*\*\*\s*$)", table.strip())
    first = parts[0].strip().split("\n\n")[0]  # "Produced by ..." (the caption stays on the results page)
    return "\n\n".join([first] + [p.strip() for p in parts[1:] if _title(p.strip().split("\n")[0]) in keep])


def _title(line: str) -> str | None:
    """A table's title from its heading line (`### Title`, or the older `**Title**`), else None."""
    line = line.strip()
    if line.startswith("### "):
        return line[4:].strip()
    if line.startswith("**") and line.endswith("**") and len(line) > 4:
        return line.strip("*").strip()
    return None


# The suite figures a results page shows, per benchmark, in this order (hypermask/reporting/plots.py)
FIGURE_KINDS = (
    ("methods", "mean accuracy on the tasks seen, after each task"),
    ("per_task", "each task's accuracy as later tasks arrive"),
    ("memory", "average accuracy against the bytes stored"),
    ("memory_class_il", "class-incremental accuracy (no task id) against the bytes stored"),
)


def figures_section(page: Path, suite: str, results: Path, benchmarks: list[str]) -> str:
    """The figures of a suite's results block on a docs page: each benchmark's suite figures,
    copied from RESULTS/figures/SUITE/ to figures/SUITE/ beside the page (the site serves them;
    the PDFs stay in results/), embedded under a heading per benchmark."""
    import shutil

    source, target = results / "figures" / suite, page.parent / "figures" / suite
    out = ["### Figures\n"]
    for b in benchmarks:
        shown = [(k, what) for k, what in FIGURE_KINDS if (source / f"{b}_{k}.png").is_file()]
        if not shown:
            continue
        out.append(f"#### {b}\n")
        target.mkdir(parents=True, exist_ok=True)
        for k, what in shown:
            shutil.copyfile(source / f"{b}_{k}.png", target / f"{b}_{k}.png")
            out.append(f"![{b}: {what}](figures/{suite}/{b}_{k}.png)\n")
    axes = sorted(source.glob("axis_*.png"))  # a suite with axes: one figure per axis and benchmark
    if axes:
        out.append("#### Axes\n")
        target.mkdir(parents=True, exist_ok=True)
        for f in axes:
            shutil.copyfile(f, target / f.name)
            out.append(f"![{f.stem}: average accuracy along the axis](figures/{suite}/{f.name})\n")
    return "\n".join(out) if len(out) > 1 else ""


def update(paths: list[Path], suite: str, results: Path) -> list[Path]:
    from hypermask.records.storage import complete_pending
    from hypermask.reporting.tables import set_journal

    complete_pending(set_journal(results, suite))  # a set the last `hypermask tables` left half-renamed
    md = results / "tables" / f"{suite}.md"
    try:
        table = md.read_text()
    except OSError:
        raise ConfigError(f"{md}: no table; run `hypermask tables {suite}` (or the pipeline) first") from None
    table = table.split("\n", 2)[2] if table.startswith("# ") else table  # the page has its own heading
    found = blocks(paths, suite)
    for page in dict.fromkeys(p for p, _ in found):
        text = page.read_text()
        for kind in KINDS:
            span = _find(text, suite, kind)
            if span:
                body = table.strip() if kind == "results" else headline(table)
                if kind == "results" and page.parent.name == "docs":
                    figures = figures_section(page, suite, results, _benchmarks(results, suite))
                    body += "\n\n" + figures.strip() if figures else ""
                text = text[: span[0]] + "\n" + body + "\n" + text[span[1] :]
        atomic_write_text(page, text)
    return list(dict.fromkeys(p for p, _ in found))


def _benchmarks(results: Path, suite: str) -> list[str]:
    from hypermask.reporting.tables import read_suite_csv

    return list(dict.fromkeys(read_suite_csv(results, suite)["benchmark"].astype(str)))


def figure_problems(page: Path, block: str, where: str, benchmarks: list[str]) -> list[str]:
    """A results block's figures: every embedded image present beside the page, and every
    benchmark of the suite shown."""
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", block)
    problems = [
        f"{where}: figure {link} is not in {page.parent}"
        for link in links
        if not (page.parent / link).is_file()
    ]
    for b in benchmarks:
        if not any(Path(link).name.startswith(f"{b}_") for link in links):
            problems.append(
                f"{where}: no figure of {b} (run `hypermask docs --suite SUITE` after the tables)"
            )
    return problems


def _sections(text: str) -> dict[str, dict[str, dict[str, str]]]:
    """The block's tables: title -> method -> benchmark -> cell."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    title: str | None = None
    lines: list[str] = []
    for line in [*text.splitlines(), ""]:
        if _title(line) is not None:
            title, lines = _title(line), []
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


def check(paths: list[Path], suite: str, results: Path, tolerance: float) -> list[str]:
    """The differences (beyond `tolerance` percentage points, or in the seeds found) between
    each block of `suite` in `paths` and the suite's table; empty when the pages say what the
    pipeline produced."""
    from hypermask.reporting.tables import TABLES, read_suite_csv

    csv = results / "tables" / f"{suite}.csv"
    try:
        df = read_suite_csv(results, suite)
    except (OSError, ValueError):
        raise ConfigError(
            f"{csv}: no table; run `hypermask tables {suite}` (or the pipeline) first"
        ) from None
    problems = []
    for page, kind in blocks(paths, suite):
        text = page.read_text()
        span = _find(text, suite, kind)
        assert span is not None  # blocks() found it
        i, j = span
        sections = _sections(text[i:j])
        where = f"{page}: the {kind} block of {suite}"
        if kind == "results" and page.parent.name == "docs":
            problems += figure_problems(
                page, text[i:j], where, list(dict.fromkeys(df["benchmark"].astype(str)))
            )
        for table in (t for t in TABLES if t.column in CHECKED):
            said = sections.get(table.title)
            if said is None:
                problems.append(f"{where}: no table '{table.title}'")
                continue
            for _, r in df.iterrows():
                cell = said.get(str(r["method"]), {}).get(str(r["benchmark"]))
                if cell is None:
                    problems.append(f"{where}: {r['experiment']} not in '{table.title}'")
                    continue
                if _seeds(cell, r["seeds"]) != r["seeds"]:
                    problems.append(
                        f"{where}: {r['experiment']}: seeds {_seeds(cell, r['seeds'])} said, "
                        f"{r['seeds']} produced"
                    )
                got = float(r[f"{table.column}_mean"])
                if not abs(_mean(cell) - got) <= tolerance:
                    problems.append(
                        f"{where}: {r['experiment']}: {table.column} {cell} said, {got:.2f} produced here"
                    )
            pairs = {(m, b) for m, cells in said.items() for b in cells}
            for m, b in pairs - set(zip(df["method"].astype(str), df["benchmark"].astype(str))):
                problems.append(f"{where}: {b}/{m} in '{table.title}' but not in the suite")
    return problems


# ------------------------------------------------------------------ blocks from the code and the benches
def render_methods(params) -> str:
    """The methods table, from the methods' records (family, heads, what it can do without the
    task id) and params.yaml's descriptions, in params.yaml's order."""
    from hypermask.methods import METHODS
    from hypermask.methods.record import TARGET_KINDS

    rows = [
        "| method | what it is | family | output heads (task-incremental) | without the task id | target networks |",
        "|---|---|---|---|---|---|",
    ]
    for name in [*params.methods, *(m for m in METHODS if m not in params.methods)]:
        e, desc = (
            METHODS[params.implementation(name)],
            params.methods[name].description if name in params.methods else "",
        )
        if name in params.methods and params.methods[name].variant_of:
            desc = f"variant of `{params.methods[name].variant_of}`: {desc}"
        free = (
            ", ".join(
                ["entropy, FeCAM"] * e.task_inference
                + ["own head over all classes"] * e.class_incremental
                + ["one-shot"] * e.one_shot
            )
            or "n/a"
        )
        targets = "all" if set(e.targets) == set(TARGET_KINDS) else ", ".join(e.targets)
        rows.append(f"| `{name}` | {desc} | {e.family.replace('_', ' ')} | {e.head} | {free} | {targets} |")
    return "\n".join(rows) + "\n"


def static_blocks(params) -> dict[tuple[str, str], Any]:
    """(begin, end) marker -> the function rendering that block."""
    from hypermask.reporting import speed_blocks, verification

    return {
        ("<!-- methods -->", "<!-- end methods -->"): lambda: render_methods(params),
        **speed_blocks.BLOCKS,
        ("<!-- verification -->", "<!-- end verification -->"): lambda: verification.render(
            order=list(params.methods)
        ),
        (
            "<!-- maintained implementation -->",
            "<!-- end maintained implementation -->",
        ): verification.render_maintained,
    }


def render_pages(paths: list[Path], params) -> dict[Path, str]:
    """Every page's text with its static blocks rendered anew (pages without one left out);
    a marker that no page holds is an error."""
    out: dict[Path, str] = {}
    texts = {p: p.read_text() for p in paths}
    for (begin, end), render in static_blocks(params).items():
        held = [p for p, t in texts.items() if begin in t]
        if not held:
            raise ConfigError(f"no page of {', '.join(map(str, paths))} holds the block {begin} ... {end}")
        body = render()
        for p in held:
            text = out.get(p, texts[p])
            i, j = text.find(begin), text.find(end)
            if j < i:
                raise ConfigError(f"{p}: {begin} without its {end}")
            out[p] = text[: i + len(begin)] + "\n" + body + text[j:]
    return out
