"""The parallel-region count behind docs/performance.md's regions table (bench/bench_train_step.py),
against a hand count on a sequence of ops whose sizes put them on either side of ATen's grain."""

import sys

import torch
from torch.profiler import ProfilerActivity, profile

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from bench_train_step import GRAIN_SIZE, parallel_regions  # noqa: E402


def test_regions_are_the_work_ops_above_the_grain():
    big, small = torch.randn(GRAIN_SIZE + 1), torch.randn(GRAIN_SIZE)
    a, b = torch.randn(300, 200), torch.randn(200, 300)  # 60,000 entries per operand
    n = 2
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(n):
            big.mul(2)  # 1 region
            small.mul(2)  # below the grain: none
            big.view(-1, 1).t()  # views: neither a region nor an op doing work
            big[:10].abs()  # a slice of 10 entries: none
            torch.mm(a, b)  # 1 region (MKL)
            torch.mm(a[:2], b[:, :2])  # 2x200 by 200x2: none
    pr = parallel_regions(prof.events(), n, adam_tensors=3)
    assert pr["by_op"] == {"aten::_fused_adam_": 3.0, "aten::mul": 1.0, "aten::mm": 1.0}
    assert pr["per_iter"] == 5.0
    # two muls, the copy of each mul's Python scalar into a tensor, the abs, two products
    assert pr["leaf_ops_per_iter"] == 7.0
