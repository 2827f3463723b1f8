"""The "Verified against the authors' code" block of docs/methods.md, rendered by `hypermask docs`
(hypermask/reporting/readme.py) from bench/results/verify_*.json (never typed).

Each verification JSON is written by bench/verify/verify_METHOD.py (bench/verify/harness.py: its
docstring holds the schema): the authors' code at a pinned commit, run with listed compatibility
and configuration edits, beside `hypermask train` on the same configuration, a few seeds a side;
or "status": "not_run" with the reason. HyperMask's own side-by-side is the speed bench's
bench/results/speed_reference.json (one seed a side, so no test): its accuracies make HyperMask's
row where that JSON has both sides' average accuracy.

The block renders whatever JSON is present (none, some or all): a row per JSON row (a not-run
method gets one row with its reason), the edits and the longer differences listed per method
below the table, then every method of the registry (hypermask/methods/specs/) that has no
verification, with why (bounds and plain baselines have no official code). Means and sample
stds (ddof 1) are computed here from each side's per-seed accuracies, and so is the test:
Welch's two-sided t-test over seeds, agree when p >= 0.05 (the harness's rule); a stored
verdict whose p differs from the seeds' is an error, not a row.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from hypermask.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
ALPHA = 0.05  # bench/verify/harness.py's ALPHA
TEST = (
    "Welch's two-sided t-test over seeds (scipy.stats.ttest_ind, equal_var=False)"  # harness.verdict's test
)
REFERENCE = "speed_reference.json"  # HyperMask's side-by-side (bench/bench_reference.py)
LONG = 300  # characters: a row's differences longer than this go to the list below the table


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample std (ddof 1; NaN for one value)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return mean, std


def welch_p(official: list[float], ours: list[float]) -> float:
    """The p-value of Welch's two-sided t-test (NaN with fewer than two seeds a side; with no
    spread on either side, 1 where the means are equal, else 0): bench/verify/harness.verdict."""
    if len(official) < 2 or len(ours) < 2:
        return float("nan")
    (mo, so), (mu, su) = mean_std(official), mean_std(ours)
    if so == 0 and su == 0:
        return 1.0 if mo == mu else 0.0
    from scipy import stats

    return float(stats.ttest_ind(official, ours, equal_var=False).pvalue)


def _num(x: float, digits: int = 2, sign: bool = False) -> str:
    s = f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"
    return s.replace("-", "−")


def _side(values: list[float] | None) -> str:
    if not values:
        return "—"
    m, s = mean_std(values)
    n = len(values)
    spread = f" ± {_num(s)}" if not math.isnan(s) else ""
    return f"{_num(m)}{spread} ({n} seed{'s' if n != 1 else ''})"


def _p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "< 0.001" if p < 1e-3 else f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


def _code(official: dict) -> str:
    repo, commit = official.get("repo", ""), str(official.get("commit", ""))
    if not repo:
        return "—"
    short = commit[:7]
    link = (
        f"[{repo}](https://github.com/{repo}/tree/{commit})"
        if commit
        else f"[{repo}](https://github.com/{repo})"
    )
    return f"{link} @ `{short}`" if short else link


def _flat(text: str) -> str:
    """Text on one line."""
    return " ".join(str(text).split())


def _cell(text: str) -> str:
    """Text made safe for one table cell."""
    return _flat(text).replace("|", "\\|")


class Row:
    """One table row: a method's side-by-side on one configuration (or its not-run reason)."""

    def __init__(
        self,
        method: str,
        source: str,
        official: dict,
        benchmark: str,
        configuration: str,
        theirs: list[float] | None,
        ours: list[float] | None,
        edits: list[dict],
        differences: list[str],
        why: str | None = None,
        stored_p: float | None = None,
        test: str = TEST,
        notes: list[str] | None = None,
    ):
        self.method, self.source, self.official = method, source, official
        self.benchmark, self.configuration = benchmark, configuration
        self.theirs, self.ours, self.differences = theirs, ours, differences
        self.all_edits = edits
        self.edits = [e for e in edits if _applies(e, benchmark)]
        self.why, self.test, self.notes = why, test, notes or []
        self.p = welch_p(theirs, ours) if theirs and ours and why is None else float("nan")
        if stored_p is not None and not (math.isnan(stored_p) and math.isnan(self.p)):
            if (
                math.isnan(stored_p)
                or math.isnan(self.p)
                or abs(stored_p - self.p) > 1e-6 * max(1.0, abs(self.p))
            ):
                raise ConfigError(
                    f"{source}: {benchmark}: its verdict says p = {stored_p}, its seeds give "
                    f"p = {self.p} (rerun its verify script)"
                )

    @property
    def verdict(self) -> str:
        if self.why is not None:
            return f"not run: {self.why}"
        if not self.theirs or not self.ours:
            return "not run: a side has no runs recorded"
        if math.isnan(self.p):
            return "not tested: one seed a side"
        return "agree" if self.p >= ALPHA else "differs"

    @property
    def difference(self) -> str:
        if self.why is not None or not self.theirs or not self.ours:
            return "—"
        d = mean_std(self.ours)[0] - mean_std(self.theirs)[0]
        if math.isnan(self.p):
            return f"{_num(d, sign=True)} (no test)"
        return f"{_num(d, sign=True)} (p {'= ' if _p(self.p)[0] != '<' else ''}{_p(self.p)})"

    @property
    def long_differences(self) -> bool:
        return len("; ".join(self.differences)) > LONG

    def markdown(self) -> str:
        conf = f"`{self.benchmark}`" + (f": {self.configuration}" if self.configuration else "")
        if self.long_differences:
            diffs = f"{len(self.differences)}, listed below"
        else:
            diffs = "; ".join(self.differences) or ("—" if self.why else "none listed")
        cells = [
            f"`{self.method}`",
            _code(self.official),
            conf,
            _side(self.theirs),
            _side(self.ours),
            self.difference,
            self.verdict,
            "—" if self.why else str(len(self.edits)),
            diffs,
        ]
        return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _applies(edit: dict, benchmark: str) -> bool:
    """Whether an edit is one of the run of `benchmark` (an edit may name its "benchmark" or "benchmarks")."""
    if edit.get("benchmark") is not None:
        return edit["benchmark"] == benchmark
    if edit.get("benchmarks"):
        return benchmark in edit["benchmarks"]
    return True


def _edit_list(edits: list[dict]) -> list[tuple[dict, list[str]]]:
    """The distinct edits (file, reason, text) with the benchmarks they were made for (empty: all)."""
    out: dict[tuple, tuple[dict, list[str]]] = {}
    for e in edits:
        key = (e.get("file"), e.get("why"), e.get("old"), e.get("new"))
        named = [e["benchmark"]] if e.get("benchmark") is not None else list(e.get("benchmarks") or [])
        if key not in out:
            out[key] = (e, [])
        out[key][1].extend(b for b in named if b not in out[key][1])
    return list(out.values())


def _accuracies(side: dict | None) -> list[float] | None:
    if not side:
        return None
    acc = side.get("average_accuracy")
    return [float(a) for a in acc] if acc else None


def rows_of(path: Path) -> list[Row]:
    """The rows of one verify_METHOD.json."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a verification JSON ({e})") from None
    method = rec.get("method") or path.stem.removeprefix("verify_")
    official, edits = rec.get("official", {}), rec.get("edits", [])
    notes = [str(f) for f in rec.get("findings", [])]
    if rec.get("status") == "not_run" and rec.get("rows"):
        why = rec.get("why") or "no reason recorded"
        return [
            Row(
                method,
                path.name,
                official,
                r.get("benchmark", ""),
                r.get("configuration", ""),
                None,
                None,
                edits,
                [str(d) for d in r.get("differences", [])],
                why=r.get("why") or why,
                notes=notes,
            )
            for r in rec["rows"]
        ]
    if rec.get("status") == "not_run":
        return [
            Row(
                method,
                path.name,
                official,
                rec.get("benchmark", "fmnist_permuted"),
                rec.get("configuration", ""),
                None,
                None,
                edits,
                rec.get("differences", []),
                why=rec.get("why") or "no reason recorded",
                notes=notes,
            )
        ]
    if rec.get("status") != "verified":
        raise ConfigError(f"{path}: status {rec.get('status')!r}, not 'verified' or 'not_run'")
    out = []
    for r in rec.get("rows", []):
        v = r.get("verdict") or {}
        stored = v.get("p")
        out.append(
            Row(
                method,
                path.name,
                official,
                r.get("benchmark", ""),
                r.get("configuration", ""),
                _accuracies(r.get("official")),
                _accuracies(r.get("ours")),
                edits,
                [str(d) for d in r.get("differences", [])],
                why=r.get("why"),
                stored_p=float(stored) if stored is not None else None,
                test=v.get("test", TEST),
                notes=notes,
            )
        )
    if not out:
        raise ConfigError(f"{path}: status 'verified' but no rows")
    return out


def reference_row(path: Path) -> Row | None:
    """HyperMask's row from the speed bench's side-by-side, where it has both sides' average accuracy."""
    if not path.is_file():
        return None
    rec = json.loads(path.read_text())
    ref, ours = rec.get("reference", {}), rec.get("hypermask", {})
    if ref.get("average_accuracy") is None or ours.get("average_accuracy") is None:
        return None
    conf = rec.get("configuration", {})
    described = (ours.get("config") or {}).get("description", "")
    what = ", ".join(
        f"{k} {conf[k]}" for k in ("beta", "lambda", "iterations_per_task", "threads", "device") if k in conf
    )
    configuration = (
        "; ".join(x for x in (described, f"seed {conf.get('seed')} a side", what) if x)
        + " (the speed bench's side-by-side, `bench/bench_reference.py`)"
        + ("" if rec.get("settings_match", True) else "; its settings differ (settings_match false)")
    )
    return Row(
        "hypermask",
        path.name,
        {"repo": "gmum/HyperMask", "commit": ref.get("commit", "")},
        conf.get("benchmark", ""),
        configuration,
        [float(ref["average_accuracy"])],
        [float(ours["average_accuracy"])],
        rec.get("edits", []),
        [str(d) for d in rec.get("not_the_same", [])],
    )


def _unverified(covered: set[str], order: list[str]) -> list[str]:
    from hypermask.methods import METHODS

    lines = []
    for name in order:
        if name in covered:
            continue
        r = METHODS[name]
        if r.code:
            lines.append(f"* `{name}`: not verified yet (official code: {r.code})")
        elif r.settings is None:
            lines.append(f"* `{name}`: no official code, a bound or plain baseline ({r.paper})")
        else:
            lines.append(
                f"* `{name}`: no official code named in its record (`hypermask/methods/specs/{name}.py`)"
            )
    return lines


def render(results: Path | None = None, order: list[str] | None = None) -> str:
    """The block: the table, the per-method edits and long differences, the methods not verified."""
    from hypermask.methods import METHODS

    results = RESULTS if results is None else Path(results)
    order = [
        m for m in [*(order or []), *(m for m in METHODS if m not in (order or []))] if m in METHODS
    ]  # no variants
    rank = {m: i for i, m in enumerate(order)}
    rows: list[Row] = []
    ref = reference_row(results / REFERENCE)
    if ref is not None:
        rows.append(ref)
    for path in sorted(results.glob("verify_*.json")):
        rows += rows_of(path)
    rows.sort(key=lambda r: (rank.get(r.method, len(rank)), r.method))
    tests = sorted({r.test for r in rows if not math.isnan(r.p)}) or [TEST]
    out = [
        "Each row: the authors' code at the commit shown, run by `bench/verify/verify_METHOD.py` with only "
        "the compatibility and configuration edits listed below (counted in *edits*; nothing of theirs is "
        "committed here), beside `hypermask train` on the same configuration. Cells: the final average "
        "accuracy (%, task id given) over each side's seeds, mean ± sample std (ddof 1); *difference* = "
        f"ours − official, in points, and p of {' / '.join(tests)}; *agree* when p ≥ {ALPHA} (the means differ "
        "by no more than the seeds' spread explains), *differs* otherwise. Each row is its own question: "
        "no correction for multiple tests (Holm's would only make *agree* easier). Rendered by `hypermask "
        "docs` from `bench/results/verify_*.json` and `bench/results/speed_reference.json`.",
        "",
    ]
    if rows:
        out += [
            "| method | official code | benchmark / configuration | official: mean ± std | ours: mean ± std | "
            "difference (p) | verdict | edits | differences |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        out += [r.markdown() for r in rows]
        out.append("")
        details = []
        seen: set[tuple[str, str]] = set()
        for r in rows:
            if (r.method, r.source) in seen:
                continue
            seen.add((r.method, r.source))
            edits = _edit_list(r.all_edits)
            n = len(edits)
            head = (
                f"{n} edit{'s' if n != 1 else ''} of the official code:"
                if n
                else "no edit of the official code" + ("; what its checkout shows:" if r.notes else ".")
            )
            lines = [f"* `{r.method}` (`bench/results/{r.source}`): {head}"]
            lines += [
                f"    * `{_flat(e.get('file', '?'))}`"
                + (f" ({', '.join(bs)})" if bs else "")
                + f": {_flat(e.get('why', ''))}"
                for e, bs in edits
            ]
            for x in rows:
                if (x.method, x.source) == (r.method, r.source) and x.long_differences:
                    lines.append(f"    * differences on `{x.benchmark}`:")
                    lines += [f"        * {_flat(d)}" for d in x.differences]
            lines += [f"    * {_flat(n)}" for n in r.notes]
            details.append("\n".join(lines))
        out += details
        out.append("")
    else:
        out += ["No verification has been run yet.", ""]
    covered = {r.method for r in rows}
    missing = _unverified(covered, order)
    if missing:
        out += [
            "Methods of the comparison without a side-by-side run against their authors' code:",
            "",
            *missing,
            "",
        ]
    return "\n".join(out)


MAINTAINED = "reference_classil.json"  # bench/verify/verify_classil.py: the class-IL methods beside Avalanche


def render_maintained(results: Path | None = None) -> str:
    """The class-incremental methods beside a maintained implementation (Avalanche), from
    bench/results/reference_classil.json: per method, both sides' class-incremental accuracy over
    their seeds, the difference and Welch's p (computed here from the seeds; a stored p that
    disagrees is an error), and the algorithmic differences the JSON lists."""
    path = (RESULTS if results is None else Path(results)) / MAINTAINED
    if not path.is_file():
        return (
            "Not run yet (`bench/verify/verify_classil.py` writes `bench/results/reference_classil.json`).\n"
        )
    try:
        rec = json.loads(path.read_text())
        ref, rows = rec["reference"], rec["rows"]
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"{path}: not a class-incremental reference JSON ({e})") from None
    lib = f"{ref.get('package', ref.get('repo', '?'))} {ref.get('version', '')}".strip()
    out = [
        f"Each row: our method and the strategy of [{ref.get('repo')}](https://github.com/{ref.get('repo')}) "
        f"({lib}) named beside it, run by `bench/verify/verify_classil.py` on the same tasks, network, "
        "initialisation, iterations, learning rate, memory and hyperparameters (its docstring lists what is "
        f"shared). Cells: {_flat(rec.get('measure', 'class-incremental accuracy (%)'))}, mean ± sample std "
        "(ddof 1) over each side's seeds; *difference* = ours − Avalanche in points, and p of "
        f"{TEST}; *agree* when p ≥ {ALPHA}. Avalanche is not the authors' code of any of them: the "
        "differences are each library's own algorithm, listed below the table. Rendered by `hypermask "
        f"docs` from `bench/results/{MAINTAINED}`.",
        "",
        "| method | Avalanche | benchmark / configuration | Avalanche: mean ± std | ours: mean ± std | "
        "difference (p) | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    details = []
    for r in rows:
        theirs, ours = r["avalanche"]["class_accuracy"], r["ours"]["class_accuracy"]
        row = Row(
            r["method"],
            path.name,
            {},
            r.get("benchmark", ""),
            r.get("configuration", ""),
            theirs,
            ours,
            [],
            [],
            stored_p=(r.get("verdict") or {}).get("p"),
        )
        conf = f"`{row.benchmark}`" + (f": {row.configuration}" if row.configuration else "")
        cells = [
            f"`{row.method}`",
            f"`{r['strategy']}`",
            conf,
            _side(theirs),
            _side(ours),
            row.difference,
            row.verdict,
        ]
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        details.append(f"* `{row.method}` against `{r['strategy']}`:")
        details += [f"    * {_flat(d)}" for d in r.get("differences", [])]
        iso = r.get("isolation")
        if iso:
            probe = Row(
                row.method,
                path.name,
                {},
                row.benchmark,
                "",
                theirs,
                iso["class_accuracy"],
                [],
                [],
                stored_p=(iso.get("verdict_against_avalanche") or {}).get("p"),
            )
            details.append(
                f"    * isolated: {_flat(iso['what'])}: {_side(iso['class_accuracy'])}, "
                f"{probe.difference.replace('(', '(against Avalanche, ', 1)}, {probe.verdict}"
            )
    return "\n".join([*out, "", *details, ""])
