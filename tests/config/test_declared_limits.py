"""Fixed-width state declares its limit, and `check` refuses a configuration beyond it before
any training (PackNet's 8-bit owners once overflowed with a bare traceback at the 256th task,
after hours of training); settings that contradict themselves are refused by key."""

import copy

import pytest
import torch

from conftest import TINY, write_params
from hypermask.cli.main import main
from hypermask.methods import METHODS


def _check(tmp_path, edit) -> int:
    p = copy.deepcopy(TINY)
    edit(p)
    return main(["--params", str(write_params(tmp_path / "params.yaml", p)), "check"])


def test_packnet_record_matches_its_owner_width():
    from hypermask.methods.packnet import OWNER_DTYPE

    assert METHODS["packnet"].max_tasks == torch.iinfo(OWNER_DTYPE).max == 255
    assert "8 bits" in METHODS["packnet"].max_tasks_why
    assert all(r.max_tasks is None for n, r in METHODS.items() if n != "packnet")


@pytest.mark.parametrize("n_tasks,code", [(255, 0), (256, 2), (257, 2)])
def test_check_refuses_more_tasks_than_packnet_holds(tmp_path, capsys, n_tasks, code):
    def edit(p):
        p["benchmarks"]["tiny"]["data"]["n_tasks"] = n_tasks
        p["methods"]["packnet"] = {}
        p["suites"]["demo"]["methods"].append("packnet")

    assert _check(tmp_path, edit) == code
    if code:
        err = capsys.readouterr().err
        assert f"data.n_tasks: {n_tasks} tasks, but packnet holds at most 255" in err
        assert "owner is stored in 8 bits" in err


def test_the_packnet_limit_holds_for_its_variants_too(tmp_path, capsys):
    def edit(p):
        p["benchmarks"]["tiny"]["data"]["n_tasks"] = 300
        p["methods"]["packnet"] = {}
        p["methods"]["packnet_light"] = {"variant_of": "packnet", "settings": {"packnet": {"prune": 50.0}}}
        p["suites"]["demo"]["methods"].append("packnet_light")

    assert _check(tmp_path, edit) == 2
    assert "packnet holds at most 255" in capsys.readouterr().err


def test_the_owner_overflow_is_real():
    """Why the limit: the 256th task's owner id wraps to 0 (a free weight) in 8 bits."""
    owner = torch.zeros(1, dtype=torch.uint8)
    owner[0] = 255
    assert int((owner + 1)[0]) == 0


@pytest.mark.parametrize(
    "dim,ok",
    [
        ({"type": "int", "low": 1.5, "high": 1.9}, False),
        ({"type": "int", "low": 1, "high": 2.5}, False),
        ({"type": "int", "low": 1, "high": 4}, True),
        ({"type": "int", "low": 1.0, "high": 4.0}, True),
    ],
)
def test_an_int_dimension_needs_integer_bounds(tmp_path, capsys, dim, ok):
    def edit(p):
        p["sweeps"] = {
            "n_trials": 2,
            "benchmarks": ["tiny"],
            "spaces": {"hypermask": {"hypermask.embedding_dim": dim}},
        }

    assert _check(tmp_path, edit) == (0 if ok else 2)
    if not ok:
        assert (
            "sweeps.spaces.hypermask.hypermask.embedding_dim.low: an int dimension needs integer bounds"
            in (capsys.readouterr().err)
        )
