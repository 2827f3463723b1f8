"""The training loop's Adam and plateau schedule against torch.optim's own, bit for bit."""

import math

import torch

from hypermask.optim import FusedAdam, ReduceLROnPlateau


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.ELU(), torch.nn.Linear(5, 3))
    m.unused = torch.nn.Parameter(torch.randn(4))  # never gets a gradient: skipped by both
    return m


def test_fused_adam_equals_torch_adam():
    a, b = _model(0), _model(0)
    ours = FusedAdam(a.parameters(), lr=3e-3)
    theirs = torch.optim.Adam(b.parameters(), lr=3e-3, fused=True)
    g = torch.Generator().manual_seed(1)
    for step in range(12):
        x, y = torch.randn(16, 7, generator=g), torch.randint(0, 3, (16,), generator=g)
        for m, opt in ((a, ours), (b, theirs)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
        if step == 6:  # a learning-rate change, as the plateau schedule makes
            ours.lr = theirs.param_groups[0]["lr"] = 1e-3
        for pa, pb in zip(a.parameters(), b.parameters()):
            assert torch.equal(pa, pb)
    assert torch.equal(a.unused, _model(0).unused)  # no gradient, no update
    i = [n for n, _ in a.named_parameters()].index("0.weight")
    sa = theirs.state[b[0].weight]
    assert torch.equal(ours.exp_avg[i], sa["exp_avg"]) and torch.equal(ours.exp_avg_sq[i], sa["exp_avg_sq"])
    assert ours.steps[i].item() == sa["step"].item() == 12


def test_plateau_schedule_equals_torch():
    metrics = [
        10,
        11,
        11,
        11.0005,
        10,
        9,
        9,
        9,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
        12,
    ]
    for cooldown in (0, 2):
        ours_opt = FusedAdam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
        ours = ReduceLROnPlateau(ours_opt, factor=math.sqrt(0.1), patience=2, min_lr=5e-6, cooldown=cooldown)
        torch_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
        theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(
            torch_opt, mode="max", factor=math.sqrt(0.1), patience=2, min_lr=5e-6, cooldown=cooldown
        )
        lrs = []
        for m in metrics:
            ours.step(m)
            theirs.step(m)
            assert ours_opt.lr == torch_opt.param_groups[0]["lr"]
            lrs.append(ours_opt.lr)
        assert lrs[-1] == 5e-6 and len(set(lrs)) > 3  # reductions happened, down to the floor


def test_a_run_with_torch_optim_equals_the_default_bit_for_bit(tmp_path, monkeypatch):
    """The fallback (torch.optim.Adam(fused=True) and torch's scheduler, taken where torch has
    no `_fused_adam_` or HYPERMASK_TORCH_OPTIM is set) trains the same run to the same numbers,
    plateau schedule included (an epoch budget with validation)."""
    import copy
    import json

    from conftest import TINY, write_params
    from hypermask.cli.main import main

    p = copy.deepcopy(TINY)
    p["benchmarks"]["tiny"]["train"] = {"epochs": 3, "batch_size": 64, "lr_scheduler": True, "val_every": 5}
    params = write_params(tmp_path / "params.yaml", p)
    out = {}
    for name, env in (("default", None), ("torch", "1")):
        if env:
            monkeypatch.setenv("HYPERMASK_TORCH_OPTIM", env)
        assert (
            main(
                [
                    "--params",
                    str(params),
                    "train",
                    "tiny",
                    "--seed",
                    "1",
                    "--results",
                    str(tmp_path / name),
                    "--no-tracking",
                    "--quiet",
                    "--threads",
                    "1",
                ]
            )
            == 0
        )
        out[name] = json.loads((tmp_path / name / "runs/tiny/hypermask/seed_1/metrics.json").read_text())
    assert out["torch"]["accuracy_matrix"] == out["default"]["accuracy_matrix"]
    assert out["torch"]["random_init_accuracy"] == out["default"]["random_init_accuracy"]
