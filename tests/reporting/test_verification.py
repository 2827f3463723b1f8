"""The "Verified against the authors' code" block of docs/methods.md (hypermask/reporting/verification.py):
hand-made verification JSON rendered into the table, its cells against hand computations, the
methods without a verification listed from the registry, and `hypermask docs --check` failing
when the page is not what the JSON renders."""

import json
import math
import shutil
from pathlib import Path

import pytest

from hypermask.config import ConfigError
from hypermask.reporting import verification

ROOT = Path(__file__).resolve().parents[2]
TEST = "Welch's two-sided t-test over seeds (scipy.stats.ttest_ind, equal_var=False)"


def t_cdf_4(t: float) -> float:
    """Student t's CDF with 4 degrees of freedom, closed form."""
    u = 1 + t * t / 4
    return 0.5 + 3 / 8 * t / math.sqrt(u) * (1 - t * t / (12 * u))


def welch_p_equal_spread(a: list[float], b: list[float]) -> float:
    """Welch's p for 3 seeds a side with equal sample variances: 4 degrees of freedom exactly
    ((2 s^2/3)^2 / (2 (s^2/3)^2 / 2) = 4)."""
    ma, mb = sum(a) / 3, sum(b) / 3
    s2 = sum((x - ma) ** 2 for x in a) / 2
    assert s2 == pytest.approx(sum((x - mb) ** 2 for x in b) / 2)
    t = abs(mb - ma) / math.sqrt(2 * s2 / 3)
    return 2 * (1 - t_cdf_4(t))


OFFICIAL, OURS = [80.0, 82.0, 84.0], [83.0, 85.0, 87.0]  # means 82 and 85, sample std 2 both
FAR = [90.0, 90.5, 91.0]  # against [80, 80.5, 81]: std 0.5 both, 10 points apart


def verified(p1: float, p2: float) -> dict:
    return {
        "method": "wsn",
        "status": "verified",
        "official": {
            "repo": "ihaeyong/WSN",
            "commit": "0123456789abcdef0123456789abcdef01234567",
            "paper": "ICML 2022",
        },
        "edits": [
            {"file": "main_pmnist.py", "why": "the device: CPU"},
            {"file": "networks/mlp.py", "why": "hidden sizes 100-100"},
            {"file": "main_split.py", "why": "5 tasks of 2 classes", "benchmark": "fmnist_split"},
        ],
        "rows": [
            {
                "benchmark": "fmnist_permuted",
                "configuration": "MLP 1024-100-100, c 50%",
                "differences": ["biases: none in theirs"],
                "official": {"seeds": [1, 2, 3], "average_accuracy": OFFICIAL, "bwt": [0, 0, 0]},
                "ours": {"seeds": [1, 2, 3], "average_accuracy": OURS, "bwt": [0, 0, 0], "overrides": {}},
                "verdict": {"test": TEST, "alpha": 0.05, "difference": 3.0, "p": p1, "agree": p1 >= 0.05},
            },
            {
                "benchmark": "fmnist_split",
                "configuration": "MLP 1024-100-100, c 50%",
                "differences": [],
                "official": {"seeds": [1, 2, 3], "average_accuracy": [80.0, 80.5, 81.0], "bwt": []},
                "ours": {"seeds": [1, 2, 3], "average_accuracy": FAR, "bwt": []},
                "verdict": {"test": TEST, "alpha": 0.05, "difference": 10.0, "p": p2, "agree": False},
            },
        ],
        "machine": {},
        "command": "python bench/verify/verify_wsn.py --official /tmp/WSN",
    }


NOT_RUN = {
    "method": "packnet",
    "official": {"repo": "arunmallya/packnet", "commit": "7b6032cd089084de4d5e0059819e84be65c5a203"},
    "status": "not_run",
    "why": "src/networks.py has no MLP",
    "edits": [],
    "findings": ["src/dataset.py: ImageFolder loaders only"],
}


def p_hand() -> tuple[float, float]:
    return welch_p_equal_spread(OFFICIAL, OURS), welch_p_equal_spread([80.0, 80.5, 81.0], FAR)


@pytest.fixture
def results(tmp_path):
    p1, p2 = p_hand()
    (tmp_path / "verify_wsn.json").write_text(json.dumps(verified(p1, p2)))
    (tmp_path / "verify_packnet.json").write_text(json.dumps(NOT_RUN))
    return tmp_path


def table_rows(block: str) -> dict[tuple[str, str], list[str]]:
    """(method, benchmark) -> the row's cells."""
    lines = [ln for ln in block.splitlines() if ln.startswith("| `")]
    out = {}
    for ln in lines:
        cells = [c.strip() for c in ln.strip("|").split(" | ")]
        out[(cells[0].strip("`"), cells[2].split(":")[0].strip("`"))] = cells
    return out


def test_cells_are_the_hand_computed_means_stds_differences_and_verdicts(results):
    p1, p2 = p_hand()
    assert p1 == pytest.approx(0.14007, abs=1e-4) and p2 < 1e-3  # t = 3/sqrt(8/3) = 1.837; t = 24.49
    block = verification.render(results)
    rows = table_rows(block)
    near, far = rows[("wsn", "fmnist_permuted")], rows[("wsn", "fmnist_split")]
    assert near[1] == (
        "[ihaeyong/WSN](https://github.com/ihaeyong/WSN/tree/0123456789abcdef0123456789abcdef01234567)"
        " @ `0123456`"
    )
    assert near[2] == "`fmnist_permuted`: MLP 1024-100-100, c 50%"
    assert near[3] == "82.00 ± 2.00 (3 seeds)" and near[4] == "85.00 ± 2.00 (3 seeds)"
    assert near[5] == f"+3.00 (p = {p1:.2f})" == "+3.00 (p = 0.14)"
    assert near[6] == "agree"
    assert (
        near[7] == "2" and far[7] == "3"
    )  # the edits of each row's run (one was made for fmnist_split only)
    assert near[8] == "biases: none in theirs"
    assert far[3] == "80.50 ± 0.50 (3 seeds)" and far[4] == "90.50 ± 0.50 (3 seeds)"
    assert far[5] == "+10.00 (p < 0.001)" and far[6] == "differs" and far[8] == "none listed"
    # the test is named once, in the caption; the edits listed below the table
    assert block.count("Welch's two-sided t-test") == 1
    assert "* `wsn` (`bench/results/verify_wsn.json`): 3 edits of the official code:" in block
    assert "    * `networks/mlp.py`: hidden sizes 100-100" in block
    assert "    * `main_split.py` (fmnist_split): 5 tasks of 2 classes" in block


def test_a_not_run_method_gets_a_row_with_its_reason(results):
    block = verification.render(results)
    row = table_rows(block)[("packnet", "fmnist_permuted")]
    assert row[1].endswith("@ `7b6032c`")
    assert row[3] == row[4] == row[5] == "—"
    assert row[6] == "not run: src/networks.py has no MLP"
    assert row[7] == "—"
    assert row[8] == "—"
    assert (
        "* `packnet` (`bench/results/verify_packnet.json`): no edit of the official code; "
        "what its checkout shows:"
    ) in block
    assert "    * src/dataset.py: ImageFolder loaders only" in block


def test_methods_without_a_verification_are_listed_from_the_registry(results):
    from hypermask.methods import METHODS

    block = verification.render(results)
    listed = block[block.index("without a side-by-side run") :]
    for name in METHODS:
        if name in ("wsn", "packnet"):
            assert f"* `{name}`" not in listed
        else:
            assert f"* `{name}`" in listed, name
    assert "* `finetune`: no official code, a bound or plain baseline" in listed
    assert "* `joint`: no official code, a bound or plain baseline" in listed
    assert "* `independent`: no official code, a bound or plain baseline" in listed
    assert f"* `gpm`: not verified yet (official code: {METHODS['gpm'].code})" in listed


def test_no_json_at_all_renders_no_table_and_lists_every_method(tmp_path):
    from hypermask.methods import METHODS

    block = verification.render(tmp_path)
    assert "| method |" not in block and "No verification has been run yet." in block
    assert all(f"* `{m}`" in block for m in METHODS)


def test_hypermasks_row_comes_from_the_speed_benchs_side_by_side_one_seed_no_test(tmp_path):
    ref = {
        "configuration": {"benchmark": "fmnist_permuted", "seed": 1},
        "settings_match": True,
        "reference": {"commit": "674bf9b", "average_accuracy": 78.0},
        "hypermask": {"average_accuracy": 79.5},
        "edits": [{"file": "main.py", "why": "pandas 2"}],
        "not_the_same": ["random streams"],
    }
    (tmp_path / "speed_reference.json").write_text(json.dumps(ref))
    row = table_rows(verification.render(tmp_path))[("hypermask", "fmnist_permuted")]
    assert row[3] == "78.00 (1 seed)" and row[4] == "79.50 (1 seed)"
    assert row[5] == "+1.50 (no test)" and row[6] == "not tested: one seed a side"
    assert row[7] == "1" and row[8] == "random streams"
    del ref["hypermask"]["average_accuracy"]  # a timing-only run: no row, HyperMask listed instead
    (tmp_path / "speed_reference.json").write_text(json.dumps(ref))
    block = verification.render(tmp_path)
    assert ("hypermask", "fmnist_permuted") not in table_rows(
        block
    ) and "* `hypermask`: not verified yet" in block


def test_a_stored_p_that_its_seeds_do_not_give_is_an_error(tmp_path):
    p1, p2 = p_hand()
    (tmp_path / "verify_wsn.json").write_text(json.dumps(verified(p1 + 0.1, p2)))
    with pytest.raises(ConfigError, match="its seeds give"):
        verification.render(tmp_path)


def test_docs_check_fails_on_a_stale_page(results, tmp_path, monkeypatch, capsys):
    """`hypermask docs` writes the block from the JSON; `--check` then passes, and fails after
    the JSON changes or after a hand edit of the block."""
    from hypermask.cli.main import main

    site = tmp_path / "site"
    (site / "docs").mkdir(parents=True)
    shutil.copy(ROOT / "params.yaml", site / "params.yaml")
    shutil.copy(ROOT / "README.md", site / "README.md")
    for page in (ROOT / "docs").glob("*.md"):
        shutil.copy(page, site / "docs" / page.name)
    monkeypatch.setattr(verification, "RESULTS", results)
    params = str(site / "params.yaml")
    assert main(["--params", params, "docs"]) == 0
    page = (site / "docs" / "methods.md").read_text()
    assert "| `wsn` |" in page and "not run: src/networks.py has no MLP" in page
    assert main(["--params", params, "docs", "--check"]) == 0
    # the JSON changes (a new seed on our side): the page is stale
    rec = json.loads((results / "verify_wsn.json").read_text())
    rec["rows"][0]["ours"]["average_accuracy"] = [83.0, 85.0, 87.0, 85.0]
    rec["rows"][0]["ours"]["seeds"] = [1, 2, 3, 4]
    rec["rows"][0]["verdict"]["p"] = verification.welch_p(
        OFFICIAL, rec["rows"][0]["ours"]["average_accuracy"]
    )
    (results / "verify_wsn.json").write_text(json.dumps(rec))
    capsys.readouterr()
    assert main(["--params", params, "docs", "--check"]) == 1
    assert "methods.md: a generated block differs" in capsys.readouterr().err
    assert main(["--params", params, "docs"]) == 0 and main(["--params", params, "docs", "--check"]) == 0
    # a hand edit of a cell: stale again
    page = (site / "docs" / "methods.md").read_text()
    (site / "docs" / "methods.md").write_text(
        page.replace("82.00 ± 2.00 (3 seeds)", "83.00 ± 2.00 (3 seeds)")
    )
    assert main(["--params", params, "docs", "--check"]) == 1


def classil_reference(p: float) -> dict:
    """A hand-made bench/results/reference_classil.json (3 seeds a side, the same spreads as above)."""
    return {
        "measure": "class-incremental accuracy (%)",
        "reference": {"repo": "ContinualAI/avalanche", "package": "avalanche-lib", "version": "0.6.0"},
        "rows": [
            {
                "method": "derpp",
                "strategy": "avalanche.training.DER",
                "benchmark": "digits_split",
                "configuration": "MLP 100-100",
                "differences": ["replay: one draw in theirs"],
                "avalanche": {"seeds": [1, 2, 3], "class_accuracy": OFFICIAL},
                "ours": {"seeds": [1, 2, 3], "class_accuracy": OURS},
                "verdict": {"test": TEST, "p": p},
            }
        ],
    }


def test_the_maintained_implementation_block_has_the_hand_computed_cells(tmp_path):
    p = welch_p_equal_spread(OFFICIAL, OURS)
    (tmp_path / "reference_classil.json").write_text(json.dumps(classil_reference(p)))
    block = verification.render_maintained(tmp_path)
    cells = [
        c.strip()
        for c in next(ln for ln in block.splitlines() if ln.startswith("| `")).strip("|").split(" | ")
    ]
    assert cells[:3] == ["`derpp`", "`avalanche.training.DER`", "`digits_split`: MLP 100-100"]
    assert cells[3] == "82.00 ± 2.00 (3 seeds)" and cells[4] == "85.00 ± 2.00 (3 seeds)"
    assert cells[5] == "+3.00 (p = 0.14)" and cells[6] == "agree"
    assert "avalanche-lib 0.6.0" in block and "    * replay: one draw in theirs" in block
    # an isolation run (ours with one of their departures put in): its cells against Avalanche's
    rec = classil_reference(p)
    rec["rows"][0]["isolation"] = {
        "what": "logits refreshed",
        "class_accuracy": OFFICIAL,
        "verdict_against_avalanche": {"p": 1.0},
    }
    (tmp_path / "reference_classil.json").write_text(json.dumps(rec))
    assert (
        "    * isolated: logits refreshed: 82.00 ± 2.00 (3 seeds), +0.00 (against Avalanche, p = 1.00), agree"
        in verification.render_maintained(tmp_path)
    )
    # a stored p that its seeds do not give is an error; no JSON: the block says so
    (tmp_path / "reference_classil.json").write_text(json.dumps(classil_reference(0.5)))
    with pytest.raises(ConfigError, match="p = 0.5"):
        verification.render_maintained(tmp_path)
    assert "Not run yet" in verification.render_maintained(tmp_path / "absent")
