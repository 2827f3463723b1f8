"""Target networks: the functional forward with an all-ones mask equals the module's own."""

import pytest
import torch

from hypermask.config import TargetConfig
from hypermask.methods.shared.functional import masked_forward
from hypermask.methods.shared.hypernetwork import HyperNetwork
from hypermask.nets import MLP, ResNet20, TaskBatchNorm, ZenkeNet, build_target


def _ones(net):
    return [torch.ones(s) for s in net.masked_shapes()]


@pytest.mark.parametrize(
    "net,shape",
    [
        (MLP(64, [20, 30], 4), (6, 1, 8, 8)),
        (ResNet20(3, 10, n_tasks=2, width=2), (4, 3, 32, 32)),
        (ResNet20(3, 5, n_tasks=2, width=1, bn_mode="per_task"), (3, 3, 64, 64)),
        (ZenkeNet("cifar", 10), (4, 3, 32, 32)),
        (ZenkeNet("tiny", 5), (2, 3, 64, 64)),
    ],
)
def test_functional_forward_with_ones_mask_equals_module(net, shape):
    torch.manual_seed(0)
    net.eval()
    x = torch.randn(shape)
    with torch.no_grad():
        a = net(x, 1)
        b = masked_forward(net, _ones(net), x, 1)
    assert torch.allclose(a, b, atol=1e-6)
    names = net.masked_names
    assert names[-1].endswith("bias") and names[-2].endswith("weight")  # output layer last
    assert not any("bns" in n for n in names)  # batch norm is not masked


def test_resnet20_structure():
    net = ResNet20(3, 10, n_tasks=1, width=2)
    assert len(net.convs) == 19 and len(net.bns) == 19  # 6n+1 convs + FC = 20 layers
    assert [net.fs[i] for i in range(4)] == [16, 32, 64, 128]
    n_masked = sum(s.numel() for s in net.masked_shapes())
    # hypnettorch's weight count for n=3, k=2, without batch norm
    fs, n = [16, 32, 64, 128], 3
    expected = 9 * (3 * fs[0] + sum(fs[i] * fs[i + 1] + (2 * n - 1) * fs[i + 1] ** 2 for i in range(3)))
    expected += fs[0] + 2 * n * sum(fs[1:]) + fs[-1] * 10 + 10
    assert n_masked == expected


def test_zenkenet_shapes_match_reference():
    cifar = ZenkeNet("cifar", 10).masked_shapes()
    assert [list(s) for s in cifar] == [
        [32, 3, 3, 3],
        [32],
        [32, 32, 3, 3],
        [32],
        [64, 32, 3, 3],
        [64],
        [64, 64, 3, 3],
        [64],
        [512, 2304],
        [512],
        [10, 512],
        [10],
    ]
    tiny = ZenkeNet("tiny", 5).masked_shapes()
    assert list(tiny[-2]) == [5, 12544]


def test_batch_stats_bn_uses_the_batch_even_in_eval():
    bn = TaskBatchNorm(3, n_tasks=2, mode="batch_stats").eval()
    x = torch.randn(8, 3, 4, 4) * torch.tensor([5.0, 0.5, 2.0]).view(1, 3, 1, 1) + 2
    y = bn(x, 0)
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    # the batch's biased variance (n = 8 * 4 * 4), per channel, as batch normalisation defines it
    var = x.var(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(y.var(dim=(0, 2, 3), unbiased=False), var / (var + 1e-5), atol=1e-5)
    assert torch.allclose(
        y, (x - x.mean(dim=(0, 2, 3), keepdim=True)) / torch.sqrt(var.view(1, 3, 1, 1) + 1e-5), atol=1e-5
    )


def test_per_task_bn_keeps_statistics_per_task():
    bn = TaskBatchNorm(3, n_tasks=2, mode="per_task").train()
    x = torch.randn(16, 3, 4, 4) + 3
    bn(x, 1)
    assert torch.all(bn.running_mean[0] == 0) and torch.all(bn.running_mean[1] > 0.1)
    bn.eval()
    # evaluation uses task 1's stored statistics, not the batch's
    expected = (x - bn.running_mean[1].view(1, 3, 1, 1)) / torch.sqrt(
        bn.running_var[1].view(1, 3, 1, 1) + 1e-5
    )
    assert torch.allclose(bn(x, 1), expected, atol=1e-5)


def test_per_task_bn_under_functional_call_updates_task_statistics():
    torch.manual_seed(0)
    net = build_target(TargetConfig(kind="resnet20", width=1, batch_norm="per_task"), (3, 32, 32), 4, 3)
    hnet = HyperNetwork(net.masked_shapes(), 3, 4, [5])
    masks = [
        m.abs() for m in torch.split(hnet(torch.tensor([2]))[0], [s.numel() for s in net.masked_shapes()])
    ]
    masks = [m.view(s) for m, s in zip(masks, net.masked_shapes())]
    net.train()
    masked_forward(net, masks, torch.randn(4, 3, 32, 32), 2)
    assert torch.all(net.bns[0].running_mean[0] == 0) and net.bns[0].running_mean[2].abs().sum() > 0
