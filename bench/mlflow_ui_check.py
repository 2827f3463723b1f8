"""Check, in a real browser, that the MLflow UI shows a benchmark's methods side by side with
the suite table's means (issue 26, item 8).

One MLflow experiment per benchmark holds its runs (METHOD/seed_N, tagged with method, seed,
benchmark, protocol) and each run's final metrics. This script serves the store with
`mlflow ui` (or uses a running server, --url), opens the experiment's runs page in headless
Chromium, shows the final-metric columns, takes a full-page screenshot of the plain list, turns
on the runs table's "Group by" the `method` tag, checks that the group rows show the average,
takes a second screenshot, reads the group rows from the page (name, run count, the value and
the aggregate's name in each metric column) and compares each method's values with the
table's means (RESULTS/tables/SUITE.csv) to the table's decimals. The run values are also
read through the server's REST API, so a disagreement says whether the UI or the store differs.

MLflow 3 keeps the grouping in the browser's local storage, not in the URL: the page's state
is the JSON under `MLflowLocalStorage-1.1-ExperimentPage-["EXPERIMENT_ID"]-ReactComponentState`,
whose `groupBy` becomes {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag",
"groupByData": "method"}]} and whose `selectedColumns` lists "metrics.`NAME`". --via clicks
(the default) sets the grouping with the UI's own controls (Group by -> Tags: method; the gear
-> Average where another aggregate is on); --via storage writes that JSON and reloads.

Then the parent runs (`hypermask tables` writes one per (benchmark, method), its seeds nested
under it, carrying the table's figures as METRIC_mean, _std, _ci_low, _ci_high): the plain runs
list with those columns, a third screenshot (OUT/parents.png), and each method's parent row
against the table's means, every method of the table present. Where the store has parent runs,
they are the check (exit status): the seeds are then nested under them, and the group-by view
groups the rows the list shows, not the seeds; its comparison stays in the report
(`grouped_view_agrees`, `methods`).

Nothing of hypermask is imported, and neither Playwright nor Chromium is a dependency of the
project (no test or CI job needs this script). Setup and use, from the repository root:

    apt-get install chromium                       # Debian's browser, used as it is
    python3 -m venv /tmp/pwvenv && /tmp/pwvenv/bin/pip install playwright   # no `playwright install`
    . .venv/bin/activate                           # puts the project's `mlflow` on PATH
    /tmp/pwvenv/bin/python bench/mlflow_ui_check.py --store sqlite:///$PWD/mlflow.db \\
        --experiment digits_permuted --table results/tables/compare_digits.csv --out /tmp/mlflow_ui_check

It writes OUT/ungrouped.png, OUT/grouped.png and OUT/report.json, prints the report (per
method: the UI's group values, the runs' mean from the REST API, the table's mean, agreement)
and exits 1 where a method disagrees, is missing, or its group counts other runs than the
table's seeds. Memory: the runs log `memory_kib`, as the table (runs made before logged `memory_bytes`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

# UI metric (as logged on each run) -> (table column prefix, factor from the run's unit to the table's)
METRICS = {
    "average_accuracy": ("average_accuracy", 1.0),
    "bwt": ("bwt", 1.0),
    "forgetting": ("forgetting", 1.0),
    "memory_kib": ("memory_kib", 1.0),
}
STATE_KEY = 'MLflowLocalStorage-1.1-ExperimentPage-["{id}"]-ReactComponentState'
ASSISTANT_KEY = "mlflow.assistant.panelOpen_v1"  # MLflow 3's assistant panel, open on first load
CSV_DECIMALS = 4  # hypermask tables writes the CSV with float_format="%.4f"


# ------------------------------------------------------------------------------- the server
def http_json(url: str, body: dict | None = None, timeout: float = 30) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode())


def http_text(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode().strip()


def start_server(mlflow: str, store: str, port: int, log: Path) -> subprocess.Popen:
    """`mlflow ui` in a process group of its own (its workers are stopped with it)."""
    cmd = [mlflow, "ui", "--backend-store-uri", store, "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"mlflow ui exited ({proc.returncode}); see {log}")
        try:
            if http_text(f"{url}/health", timeout=2) == "OK":
                return proc
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    stop_server(proc)
    raise SystemExit(f"mlflow ui did not answer on {url}/health within 180 s; see {log}")


def stop_server(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the group this script started, nothing else
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def store_runs(url: str, experiment_id: str) -> list[dict]:
    """Every active run of the experiment, through the REST API (tags and latest metrics)."""
    runs, token = [], None
    while True:
        body = {"experiment_ids": [experiment_id], "max_results": 1000, "run_view_type": "ACTIVE_ONLY"}
        if token:
            body["page_token"] = token
        page = http_json(f"{url}/api/2.0/mlflow/runs/search", body)
        for r in page.get("runs", []):
            data = r.get("data", {})
            runs.append(
                {
                    "run_id": r["info"]["run_id"],
                    "run_name": r["info"].get("run_name"),
                    "status": r["info"]["status"],
                    "tags": {t["key"]: t["value"] for t in data.get("tags", [])},
                    "metrics": {m["key"]: m["value"] for m in data.get("metrics", [])},
                }
            )
        token = page.get("next_page_token")
        if not token:
            return runs


# ------------------------------------------------------------------------------- the table
def table_means(path: Path, benchmark: str) -> dict[str, dict]:
    out = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("benchmark") != benchmark:
                continue
            means = {}
            for metric, (col, _) in METRICS.items():
                v = row.get(f"{col}_mean", "")
                means[metric] = float(v) if v not in ("", "nan", "NaN") else None
            out[row["method"]] = {
                "seeds": row.get("seeds"),
                "missing": row.get("missing") or "",
                "means": means,
            }
    return out


# ------------------------------------------------------------------------------- the page
READ_ROWS = """() => {
  // ag-grid splits a row over its pinned and scrolling containers: join the cells by row-id
  const rows = new Map();
  for (const r of document.querySelectorAll('.ag-row')) {
    const id = r.getAttribute('row-id');
    if (!rows.has(id)) rows.set(id, {row_id: id, index: Number(r.getAttribute('row-index')), cells: {}});
    for (const c of r.querySelectorAll('.ag-cell')) rows.get(id).cells[c.getAttribute('col-id')] = c.innerText;
  }
  const headers = [...document.querySelectorAll('.ag-header-cell')].map(h => h.getAttribute('col-id'));
  const m = document.body.innerText.match(/(\\d+)\\s+matching runs?/);
  const matching = m ? Number(m[1]) : null;
  return {headers, matching, rows: [...rows.values()].sort((a, b) => a.index - b.index)};
}"""

GROUP_CELL = re.compile(r"Group:\s*(?P<name>.+?)\s*\n\s*(?P<count>\d+)\s*$", re.DOTALL)
VALUE_CELL = re.compile(r"^\s*(?P<value>[-+0-9.eE]+|NaN|-)\s*(?:\((?P<agg>[^)]*)\))?\s*$")


def column_id(metric: str) -> str:
    return f"metrics.`{metric}`"


def parse_value(text: str | None) -> tuple[float | None, str | None, str | None]:
    """(value, aggregate name, raw text) of a metric cell: '71.437 (average)' -> (71.437, 'average')."""
    if text is None:
        return None, None, None
    m = VALUE_CELL.match(text)
    if not m or m["value"] in ("-", "NaN"):
        return None, m["agg"] if m else None, text
    return float(m["value"]), m["agg"], text


def read_rows(page) -> dict:
    got = page.evaluate(READ_ROWS)
    groups, runs = [], []
    for r in got["rows"]:
        name_cell = r["cells"].get("attributes.`Run Name`", "")
        values = {m: parse_value(r["cells"].get(column_id(m))) for m in METRICS}
        g = GROUP_CELL.search(name_cell)
        if g:
            groups.append(
                {
                    "row_id": r["row_id"],
                    "group": g["name"],
                    "count": int(g["count"]),
                    "values": {m: v[0] for m, v in values.items()},
                    "aggregates": {m: v[1] for m, v in values.items()},
                    "cells": {m: v[2] for m, v in values.items()},
                }
            )
        else:
            runs.append(
                {
                    "row_id": r["row_id"],
                    "run_name": name_cell.strip(),
                    "values": {m: v[0] for m, v in values.items()},
                }
            )
    return {"headers": got["headers"], "matching": got["matching"], "groups": groups, "runs": runs}


def wait_for_table(page, timeout_ms: int) -> None:
    page.wait_for_selector(".ag-row", timeout=timeout_ms)
    page.wait_for_timeout(1500)  # the metric cells fill in after the rows


def autosize(page) -> None:
    """Widen the metric columns to their content (a double click on a header's resize handle, as
    a user would; the page then stores the widths in its state's columnWidths)."""
    for m in METRICS:
        handle = page.locator(f'.ag-header-cell[col-id="{column_id(m)}"] .ag-header-cell-resize').first
        if handle.count():
            handle.dblclick()
            page.wait_for_timeout(300)
    page.mouse.move(1, 1)
    page.wait_for_timeout(300)


def get_state(page, key: str, timeout_ms: int) -> dict:
    deadline = time.time() + timeout_ms / 1000
    while time.time() < deadline:
        raw = page.evaluate("k => localStorage.getItem(k)", key)
        if raw:
            return json.loads(raw)
        page.wait_for_timeout(250)
    keys = page.evaluate("() => Object.keys(localStorage)")
    raise SystemExit(f"the runs page wrote no {key!r} to local storage (keys: {keys}); the MLflow UI changed")


def set_state(page, key: str, state: dict) -> None:
    page.evaluate(
        "([k, v, a]) => { localStorage.setItem(k, v); localStorage.setItem(a, 'false'); }",
        [key, json.dumps(state), ASSISTANT_KEY],
    )


def group_by_clicks(page, tag: str, key: str, timeout_ms: int) -> list[str]:
    """Group by the tag with the UI's controls; the average as aggregate. Returns the steps."""
    steps = []
    page.get_by_role("button", name=re.compile(r"^Group by")).first.click()
    steps.append("clicked the 'Group by' button of the runs table")
    menu_item = page.get_by_role("menuitemcheckbox", name=tag, exact=True)
    menu_item.first.wait_for(timeout=timeout_ms)
    menu_item.first.click()  # the Tags section comes first (a param of the same name follows under Params)
    steps.append(f"clicked '{tag}' under 'Tags' in its menu")
    page.wait_for_timeout(800)
    state = get_state(page, key, timeout_ms)
    keys = (state.get("groupBy") or {}).get("groupByKeys") or []
    if keys != [{"mode": "tag", "groupByData": tag}]:
        raise SystemExit(f"after the clicks the page groups by {keys}, not by the tag {tag!r}")
    if (state["groupBy"].get("aggregateFunction") or "").lower() != "average":
        if not page.get_by_role("button", name="Change aggregation function").is_visible():
            page.get_by_role("button", name=re.compile(r"^Group by")).first.click()
        page.get_by_role("button", name="Change aggregation function").click()
        average = page.get_by_role("menuitemcheckbox", name="Average", exact=True)
        for role in ("menuitemradio", "menuitem"):
            average = average.or_(page.get_by_role(role, name="Average", exact=True))
        average.first.click()
        steps.append("clicked the gear ('Change aggregation function') and 'Average'")
    page.keyboard.press("Escape")
    page.wait_for_timeout(500)
    page.keyboard.press("Escape")
    page.wait_for_timeout(1000)
    return steps


# ------------------------------------------------------------------------------- main
def fmt(v: float | None, digits: int) -> str | None:
    return None if v is None else f"{v:.{digits}f}"


def compare(
    ui: dict, store: dict[str, list[dict]], table: dict[str, dict], decimals: int
) -> tuple[dict, bool]:
    methods = sorted(set(ui) | set(table) | set(store))
    out, ok = {}, True
    for method in methods:
        g, t, s = ui.get(method), table.get(method), store.get(method, [])
        entry: dict = {
            "ui_group_count": g["count"] if g else None,
            "store_runs": len(s),
            "table_seeds": t["seeds"] if t else None,
            "table_missing_seeds": t["missing"] if t else None,
            "metrics": {},
            "problems": [],
        }
        if g is None:
            entry["problems"].append("no group row in the UI")
        if t is None:
            entry["problems"].append("not in the table")
        if g and t and t["seeds"] and g["count"] != int(t["seeds"].split("/")[0]):
            entry["problems"].append(f"the UI's group counts {g['count']} runs, the table {t['seeds']} seeds")
        for metric, (col, factor) in METRICS.items():
            vals = [r["metrics"][metric] for r in s if metric in r["metrics"]]
            ui_v = g["values"][metric] if g else None
            m = {
                "ui_cell": g["cells"][metric] if g else None,
                "ui_aggregate": g["aggregates"][metric] if g else None,
                "ui_value": ui_v,
                "store_mean": sum(vals) / len(vals) if vals else None,
                "table_column": f"{col}_mean",
                "table_mean": t["means"][metric] if t else None,
                "factor_to_table": factor,
            }
            ui_t = None if ui_v is None else ui_v * factor
            m["ui_in_table_unit"] = fmt(ui_t, decimals)
            m["table_rounded"] = fmt(m["table_mean"], decimals)
            if ui_t is None or m["table_mean"] is None:
                m["agree"] = ui_t is None and m["table_mean"] is None
            else:  # equal to the table's decimals; a difference within the CSV's own rounding also agrees
                m["agree"] = (
                    m["ui_in_table_unit"] == m["table_rounded"]
                    or abs(ui_t - m["table_mean"]) <= 0.5 * 10**-CSV_DECIMALS + 1e-9
                )
                m["abs_difference"] = abs(ui_t - m["table_mean"])
            if g and (m["ui_aggregate"] or "").lower() != "average":
                entry["problems"].append(
                    f"{metric}: the group cell shows {m['ui_aggregate']!r}, not the average"
                )
            if not m["agree"]:
                entry["problems"].append(
                    f"{metric}: UI {m['ui_in_table_unit']} != table {m['table_rounded']}"
                )
            entry["metrics"][metric] = m
        entry["agree"] = not entry["problems"]
        ok &= entry["agree"]
        out[method] = entry
    return out, ok


SUMMARY_TAG = "hypermask.summary_of"  # hypermask/tracking/summary.py's tag on a parent run


def compare_parents(
    page_rows: dict, runs: list[dict], table: dict[str, dict], decimals: int
) -> tuple[dict, bool]:
    """Each table method's parent run: its row on the page (run name = the method) and its
    METRIC_mean cells against the table's means; its nested runs in the store against the seeds."""
    shown: dict[str, dict] = {}
    for r in page_rows["rows"]:
        # the cell's text: the run's colour swatch ("#f792a6") on its own line, then its name
        lines = [x.strip() for x in (r["cells"].get("attributes.`Run Name`") or "").split("\n")]
        name = next((x for x in lines if x and not re.fullmatch(r"#[0-9a-fA-F]{6}", x)), "")
        shown.setdefault(name, r)
    parent_ids = {
        r["tags"][SUMMARY_TAG].split("/")[-1]: r["run_id"] for r in runs if SUMMARY_TAG in r["tags"]
    }
    out, ok = {}, True
    for method, t in table.items():
        row = shown.get(method)
        entry: dict = {"on_page": row is not None, "problems": [], "metrics": {}}
        if row is None:
            entry["problems"].append("no parent row on the page")
        pid = parent_ids.get(method)
        children = [r for r in runs if r["tags"].get("mlflow.parentRunId") == pid] if pid else []
        entry["nested_runs"] = len(children)
        if t["seeds"] and len(children) != int(t["seeds"].split("/")[0]):
            entry["problems"].append(f"{len(children)} runs nested, the table has {t['seeds']} seeds")
        for metric in METRICS:
            value, _, cell = parse_value(row["cells"].get(column_id(f"{metric}_mean")) if row else None)
            want = t["means"][metric]
            agree = (value is None and want is None) or (
                value is not None
                and want is not None
                and (
                    fmt(value, decimals) == fmt(want, decimals)
                    or abs(value - want) <= 0.5 * 10**-CSV_DECIMALS + 1e-9
                )
            )
            entry["metrics"][metric] = {"ui_cell": cell, "table": fmt(want, decimals), "agree": agree}
            if not agree:
                entry["problems"].append(f"{metric}_mean: UI {cell} != table {fmt(want, decimals)}")
        entry["agree"] = not entry["problems"]
        ok &= entry["agree"]
        out[method] = entry
    return out, ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--store", help="the tracking store's URI (sqlite:////abs/mlflow.db); served with `mlflow ui`"
    )
    ap.add_argument("--url", help="a running MLflow server instead of --store (http://127.0.0.1:5000)")
    ap.add_argument("--experiment", required=True, help="the MLflow experiment: a benchmark's name")
    ap.add_argument("--benchmark", help="the table's benchmark column (default: --experiment)")
    ap.add_argument("--table", required=True, type=Path, help="RESULTS/tables/SUITE.csv")
    ap.add_argument("--out", required=True, type=Path, help="folder for the screenshots and report.json")
    ap.add_argument("--tag", default="method", help="the tag to group by (default: method)")
    ap.add_argument("--decimals", type=int, default=2, help="decimals compared (the tables print 2)")
    ap.add_argument(
        "--via",
        choices=["clicks", "storage"],
        default="clicks",
        help="turn the grouping on with the UI's controls or by writing its local storage",
    )
    ap.add_argument("--port", type=int, default=5055)
    ap.add_argument("--mlflow", default=shutil.which("mlflow") or "mlflow", help="the mlflow executable")
    ap.add_argument("--chromium", default="/usr/bin/chromium", help="the browser (Debian's chromium)")
    ap.add_argument("--width", type=int, default=1800)
    ap.add_argument("--timeout", type=float, default=60, help="seconds to wait for the page")
    args = ap.parse_args(argv)
    if bool(args.store) == bool(args.url):
        ap.error("give exactly one of --store and --url")
    from playwright.sync_api import (
        sync_playwright,  # Playwright for Python, driving --chromium
    )

    args.out.mkdir(parents=True, exist_ok=True)
    table = table_means(args.table, args.benchmark or args.experiment)
    if not table:
        raise SystemExit(f"{args.table}: no row of benchmark {args.benchmark or args.experiment!r}")
    server = None
    try:
        if args.store:
            server = start_server(args.mlflow, args.store, args.port, args.out / "mlflow_ui.log")
            url = f"http://127.0.0.1:{args.port}"
        else:
            url = args.url.rstrip("/")
        version = http_text(f"{url}/version")
        q = urllib.parse.urlencode({"experiment_name": args.experiment})
        exp_id = http_json(f"{url}/api/2.0/mlflow/experiments/get-by-name?{q}")["experiment"]["experiment_id"]
        runs = store_runs(url, exp_id)
        by_tag: dict[str, list[dict]] = {}
        for r in runs:
            by_tag.setdefault(r["tags"].get(args.tag, "(none)"), []).append(r)
        key = STATE_KEY.format(id=exp_id)
        timeout_ms = int(args.timeout * 1000)
        # every row (runs and group rows) on screen at once: ag-grid renders only what is visible
        height = max(1000, 450 + 42 * (len(runs) + len(by_tag) + 2))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": args.width, "height": min(height, 16000)})
            page.goto(f"{url}/#/experiments/{exp_id}/runs", wait_until="load", timeout=timeout_ms)
            wait_for_table(page, timeout_ms)
            state = get_state(page, key, timeout_ms)
            state["selectedColumns"] = [column_id(m) for m in METRICS]  # the final metrics, nothing else
            state["groupBy"] = None
            set_state(page, key, state)
            page.reload(wait_until="load", timeout=timeout_ms)
            wait_for_table(page, timeout_ms)
            autosize(page)
            page.screenshot(path=str(args.out / "ungrouped.png"), full_page=True)
            ungrouped = read_rows(page)
            if args.via == "storage":
                state = get_state(page, key, timeout_ms)
                state["groupBy"] = {
                    "aggregateFunction": "average",
                    "groupByKeys": [{"mode": "tag", "groupByData": args.tag}],
                }
                set_state(page, key, state)
                page.reload(wait_until="load", timeout=timeout_ms)
                steps = [f"wrote groupBy into local storage key {key} and reloaded"]
            else:
                steps = group_by_clicks(page, args.tag, key, timeout_ms)
            wait_for_table(page, timeout_ms)
            page.wait_for_selector("text=/Group:/", timeout=timeout_ms)
            page.wait_for_timeout(1000)
            autosize(page)
            page.screenshot(path=str(args.out / "grouped.png"), full_page=True)
            grouped = read_rows(page)
            final_state = get_state(page, key, timeout_ms)
            # the parent runs: a fresh page (its own local storage: the grouping above does not
            # carry over), the runs list as it opens (children folded under their parents), the
            # parents' own columns, filtered to the parents whatever else the store holds
            page.close()
            n_parents = sum(1 for r in runs if SUMMARY_TAG in r["tags"])
            page = browser.new_page(
                viewport={"width": args.width, "height": max(900, 450 + 42 * (n_parents + 2))}
            )
            parents_filter = f"tags.`{SUMMARY_TAG}` LIKE '%'"
            q_filter = urllib.parse.quote(parents_filter)
            page.goto(f"{url}/#/experiments/{exp_id}/runs?searchFilter={q_filter}", wait_until="load")
            wait_for_table(page, timeout_ms)
            state = get_state(page, key, timeout_ms)
            state["selectedColumns"] = [column_id(f"{m}_mean") for m in METRICS]
            state["groupBy"] = None
            state["searchFilter"] = parents_filter
            set_state(page, key, state)
            page.reload(wait_until="load", timeout=timeout_ms)
            wait_for_table(page, timeout_ms)
            page.wait_for_timeout(1000)
            autosize(page)
            parents_page = page.evaluate(READ_ROWS)
            page.screenshot(path=str(args.out / "parents.png"), full_page=True)
            chromium = browser.version
            browser.close()
    finally:
        stop_server(server)

    ui = {g["group"]: g for g in grouped["groups"]}
    methods, grouped_ok = compare(ui, by_tag, table, args.decimals)
    parents, parents_ok = compare_parents(parents_page, runs, table, args.decimals)
    # Where `hypermask tables` wrote parent runs, the seeds are nested under them: the runs list
    # shows the parents, and grouping by the method tag groups what the list shows (a parent with
    # whichever children are expanded), not the seeds. The parents then are the check; the
    # grouped view is kept in the report as what a user sees there.
    has_parents = any(SUMMARY_TAG in r["tags"] for r in runs)
    ok = parents_ok if has_parents else grouped_ok and parents_ok
    problems, notes = [], []
    top = [r for r in runs if "mlflow.parentRunId" not in r["tags"]]  # nested runs fold under their parent
    if len(ungrouped["runs"]) not in (len(runs), len(top)):
        (notes if has_parents else problems).append(
            f"the ungrouped list shows {len(ungrouped['runs'])} rows, the store has {len(runs)} active runs "
            f"({len(top)} at the top level)"
        )
    missing_cols = [m for m in METRICS if column_id(m) not in grouped["headers"]]
    if missing_cols:
        problems.append(f"metric columns not on the page: {missing_cols}")
    report = {
        "mlflow_version": version,
        "chromium": chromium,
        "url": url,
        "experiment": args.experiment,
        "experiment_id": exp_id,
        "table": str(args.table),
        "decimals": args.decimals,
        "via": args.via,
        "steps": steps,
        "local_storage_key": key,
        "group_by_state": final_state.get("groupBy"),
        "selected_columns": final_state.get("selectedColumns"),
        "page_matching_runs": grouped["matching"],
        "store_active_runs": len(runs),
        "screenshots": {
            "ungrouped": str(args.out / "ungrouped.png"),
            "grouped": str(args.out / "grouped.png"),
        },
        "methods": methods,
        "parents": parents,
        "parents_page_rows": parents_page["rows"],
        "problems": problems,
        "notes": notes,
        "checked": "the parent runs" if has_parents else "the group-by view and the parent runs",
        "grouped_view_agrees": grouped_ok,
        "agree": ok and not problems,
        "grouped_rows": grouped["groups"],
        "ungrouped_rows": ungrouped["runs"],
    }
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    summary = {
        k: report[k]
        for k in (
            "mlflow_version",
            "experiment",
            "via",
            "local_storage_key",
            "group_by_state",
            "page_matching_runs",
            "store_active_runs",
            "checked",
            "grouped_view_agrees",
            "agree",
            "problems",
            "notes",
        )
    }
    summary["methods"] = {
        m: {
            "agree": e["agree"],
            "ui_group_count": e["ui_group_count"],
            "table_seeds": e["table_seeds"],
            "problems": e["problems"],
            **{
                k: {
                    "ui": v["ui_cell"],
                    "ui_in_table_unit": v["ui_in_table_unit"],
                    "table": v["table_rounded"],
                    "store_mean": v["store_mean"],
                    "agree": v["agree"],
                }
                for k, v in e["metrics"].items()
            },
        }
        for m, e in methods.items()
    }
    summary["parents"] = parents
    summary["report"] = str(args.out / "report.json")
    print(json.dumps(summary, indent=2))
    return 0 if report["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
