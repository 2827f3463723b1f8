"""The method's pieces against hand computations and naive reference loops."""

import numpy as np
import pytest
import torch

from hypermask.methods.hypermask import (
    hnet_reg_weight,
    semi_binary_masks,
    sparsity_at,
    target_regularizer,
)
from hypermask.methods.shared.functional import masked_forward, masked_params
from hypermask.methods.shared.hypernetwork import (
    HyperNetwork,
    WideLinear,
    hnet_regularizer,
)
from hypermask.methods.shared.percentile import (
    _order_stats_numpy,
    _order_stats_torch,
    kth_smallest,
    percentile_rows,
    thresholds,
)
from hypermask.nets import MLP


def test_percentile_matches_numpy_linear_interpolation():
    g = torch.Generator().manual_seed(0)
    for n in (1, 2, 5, 7, 100, 1001):
        s = torch.rand(3, n, generator=g, dtype=torch.float64)
        s[1, : n // 2] = s[1, 0]  # a repeated value at the lower neighbour
        for p in (0, 0.5, 10, 30, 33.3, 50, 70, 99.9, 100):
            np.testing.assert_allclose(
                percentile_rows(s, p).numpy(), np.percentile(s.numpy(), p, axis=-1), rtol=0, atol=1e-12
            )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_order_statistics_numpy_and_torch_paths_agree_bit_for_bit(dtype):
    """The CPU path (numpy's selection) and the accelerator path (kthvalue) pick the same two
    values of x, with ties, several rows, and a first-layer-sized row."""
    g = torch.Generator().manual_seed(3)
    for n in (1, 2, 3, 64, 1001, 313_600):
        x = torch.randn(2, n, generator=g, dtype=dtype).tanh().abs()
        x[1, : n // 2] = x[1, n // 3]  # a value repeated across the lower half
        for lo in sorted({0, n // 3, (n - 1) // 2, n - 1}):
            hi = min(lo + 1, n - 1)
            got, ref = _order_stats_numpy(x, lo, hi), _order_stats_torch(x, lo, hi)
            assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1]), (n, lo)
            srt = x.sort(-1).values  # and both are the sorted rows' entries lo and hi
            assert torch.equal(got[0], srt[:, lo]) and torch.equal(got[1], srt[:, hi])
            assert torch.equal(kth_smallest(x, lo + 1), torch.kthvalue(x, lo + 1, dim=-1).values)


def _plain_thresholds(s: torch.Tensor, sizes: list[int], p: float) -> torch.Tensor:
    """The naive reference: one numpy.percentile per tensor of one row, no threshold on the last."""
    chunks = np.split(s.double().numpy(), np.cumsum(sizes)[:-1])
    return torch.tensor([np.percentile(c, p) for c in chunks[:-1]] + [0.0])


@pytest.mark.parametrize("how", ["select", "sort"])
def test_batched_thresholds_equal_plain_per_tensor(how):
    g = torch.Generator().manual_seed(0)
    # equal-sized tensors (grouped into one selection), sizes 1 and 2, a saturated |tanh| of 1.0
    sizes = [12, 5, 12, 1, 2, 12, 7, 3]
    h = torch.randn(4, sum(sizes), generator=g) * 3
    h[0, :6] = 40.0  # tanh -> exactly 1.0, repeated
    h[2, 12:17] = 0.25  # a tensor whose values are all equal
    h[3, :3] = torch.tensor([1e-30, 3e-38, 0.0])  # tiny values at the lowest ranks
    s = h.tanh().abs()
    for p in (0.5, 10, 30, 33.3, 50, 99.9):
        batched = thresholds(s, tuple(sizes), p, how)
        assert batched.shape == (4, len(sizes))
        for r in range(4):
            torch.testing.assert_close(
                batched[r].double(), _plain_thresholds(s[r], sizes, p), rtol=1e-6, atol=1e-30
            )
        # the two batched paths agree bit for bit
        assert torch.equal(batched, thresholds(s, tuple(sizes), p, "sort" if how == "select" else "select"))


def test_masks_of_all_tasks_at_once_equal_task_by_task():
    g = torch.Generator().manual_seed(1)
    shapes = [torch.Size([6, 4]), torch.Size([6]), torch.Size([4, 6]), torch.Size([4])]
    h = torch.randn(3, 58, generator=g)
    batched = semi_binary_masks(h, shapes, 40.0)
    for k in range(3):
        one = semi_binary_masks(h[k], shapes, 40.0)
        for mb, m, sh in zip(batched, one, shapes):
            assert mb.shape == (3, *sh) and torch.equal(mb[k], m)
        # and each mask is |tanh| thresholded at numpy's percentile of its own tensor
        s = h[k].tanh().abs()
        q = _plain_thresholds(s, [sh.numel() for sh in shapes], 40.0)
        expected = [
            torch.where(c >= q[i].float(), c, 0.0) if i < 3 else c
            for i, c in enumerate(s.split([24, 6, 24, 4]))
        ]
        for m, e in zip(one, expected):
            assert torch.equal(m.flatten(), e)


def test_mask_on_hand_computed_tensor():
    # 4 entries, p = 50: position 0.5 * 3 = 1.5, between the 2nd and 3rd smallest |tanh| values.
    h = torch.tensor([0.1, -0.4, 0.2, 0.3, 5.0, -6.0])  # tensor A (4 entries) + bias B (2 entries)
    shapes = [torch.Size([2, 2]), torch.Size([2])]
    masks = semi_binary_masks(h, shapes, 50.0)
    s = np.abs(np.tanh([0.1, -0.4, 0.2, 0.3]))  # 0.0997, 0.3799, 0.1974, 0.2913
    q = s[2] + 0.5 * (
        s[3] - s[2]
    )  # sorted: .0997 .1974 | .2913 .3799 -> 0.197375 + 0.5 * (0.291313 - 0.197375)
    assert q == pytest.approx(0.244344, abs=1e-5)
    expected = np.where(s >= q, s, 0.0).reshape(2, 2)  # keeps -0.4 and 0.3
    np.testing.assert_allclose(masks[0].numpy(), expected, atol=1e-6)
    assert (masks[0] == 0).sum() == 2
    # last tensor: |tanh| without any threshold
    np.testing.assert_allclose(masks[1].numpy(), np.abs(np.tanh([5.0, -6.0])), atol=1e-6)


def test_reference_unittest_tensors_p70():
    # The reference's own unit test of prepare_network_sparsity (first tensor thresholded).
    w = torch.tensor([[0.1, 0.2, -0.1, -0.2, 0.03], [1, -1, 0.0, 0.45, -0.02]])
    last = torch.tensor([0.5, -0.5])
    masks = semi_binary_masks(torch.cat([w.flatten(), last]), [w.shape, last.shape], 70)
    expected = torch.tensor([[0, 0, 0, 0, 0], [0.7616, 0.7616, 0, 0.4219, 0]])
    assert torch.allclose(masks[0], expected, atol=1e-4)


def test_p0_masks_nothing_and_no_gradient_through_threshold():
    h = torch.randn(30, requires_grad=True)
    shapes = [torch.Size([5, 4]), torch.Size([10])]
    m0 = semi_binary_masks(h, shapes, 0.0)
    assert torch.equal(m0[0], h[:20].tanh().abs().view(5, 4))
    m = semi_binary_masks(h, shapes, 50.0)
    m[0].sum().backward()
    grad = h.grad[:20]
    kept = m[0].flatten() > 0
    # gradient only through kept entries: d|tanh(h)|/dh there, exactly zero elsewhere
    assert torch.all(grad[~kept] == 0)
    expected = torch.sign(h[:20]) * (1 - h[:20].tanh() ** 2)
    assert torch.allclose(grad[kept], expected.detach()[kept])


def test_last_tensor_unmasked_in_forward():
    net = MLP(3, [4], 2)
    masks = [torch.zeros(s) for s in net.masked_shapes()]
    p = masked_params(net, masks)
    assert torch.equal(p["layers.1.bias"], net.layers[1].bias)  # output bias as is
    assert torch.all(p["layers.1.weight"] == 0)  # output weight matrix masked
    out = masked_forward(net, masks, torch.randn(5, 3), None)
    assert torch.allclose(out, net.layers[1].bias.expand(5, 2))


def test_sparsity_ramp():
    # first task: p * (i+1) / I ; later tasks or no ramp: the target from the start
    assert [sparsity_at(i, 4, 40.0, True, True) for i in range(4)] == [10.0, 20.0, 30.0, 40.0]
    assert sparsity_at(0, 4, 40.0, False, True) == 40.0
    assert sparsity_at(0, 4, 40.0, True, False) == 40.0


def test_hnet_regularizer_equals_naive_loop_and_reference_normalisation():
    g = torch.Generator().manual_seed(1)
    hnet = HyperNetwork([torch.Size([3, 4]), torch.Size([3])], n_tasks=5, emb_dim=6, hidden=[7, 8])
    t = 3
    targets = torch.randn(t, 15, generator=g)
    fast = hnet_regularizer(hnet(slice(0, t)), targets)
    naive = 0.0
    for j in range(t):  # hypnettorch's calc_fix_target_reg: one hypernetwork call per earlier task
        out = hnet(torch.tensor([j]))[0]
        naive = naive + ((out - targets[j]) ** 2).sum()
    naive = naive / t
    assert torch.allclose(fast, naive, rtol=1e-6)
    assert hnet_reg_weight(0.5, t, "reference") == pytest.approx(0.5 / 3)  # beta / t on top of the 1/t
    assert hnet_reg_weight(0.5, t, "single") == 0.5
    assert hnet_reg_weight(0.5, 0, "reference") == 0.5


def test_target_regularizer_equals_naive_loop_and_reaches_hypernetwork():
    torch.manual_seed(0)
    net = MLP(4, [5], 3)
    hnet = HyperNetwork(net.masked_shapes(), n_tasks=2, emb_dim=3, hidden=[4])
    theta = [p for n, p in net.named_parameters()]
    theta_star = [p.detach() + torch.randn_like(p) for p in theta]
    masks = semi_binary_masks(hnet(torch.tensor([1]))[0], net.masked_shapes(), 30.0)
    fast = target_regularizer(theta, theta_star, masks)
    naive = 0.0
    for w, w0, m in zip(theta, theta_star, masks):
        for a, b, c in zip(w.flatten().tolist(), w0.flatten().tolist(), m.flatten().tolist()):
            naive += abs((a - b) * c)
    assert fast.item() == pytest.approx(naive, rel=1e-5)
    unmasked = target_regularizer(theta, theta_star, None)
    assert unmasked.item() == pytest.approx(
        sum((w - w0).abs().sum().item() for w, w0 in zip(theta, theta_star)), rel=1e-6
    )
    fast.backward()
    assert hnet.out.weight_t.grad is not None and hnet.out.weight_t.grad.abs().sum() > 0
    assert hnet.embeddings.grad[1].abs().sum() > 0 and hnet.embeddings.grad[0].abs().sum() == 0


def test_hypernetwork_shapes_and_init():
    torch.manual_seed(0)
    net = MLP(1024, [100, 100], 10)
    hnet = HyperNetwork(net.masked_shapes(), n_tasks=5, emb_dim=24, hidden=[25, 25])
    assert sum(hnet.out_sizes) == 113_610  # the figure for MLP 1024-100-100-10
    n_params = sum(p.numel() for p in hnet.parameters())
    assert n_params == 24 * 25 + 25 + 25 * 25 + 25 + 25 * 113_610 + 113_610 + 5 * 24
    assert abs(hnet.embeddings.std().item() - 1) < 0.3  # N(0, 1)


def test_wide_linear_is_nn_linear_stored_transposed():
    """The same draws as nn.Linear under the same seed, the same function and gradients (to
    rounding: sums over n may run in another order), and an nn.Linear checkpoint loads."""
    torch.manual_seed(7)
    lin = torch.nn.Linear(25, 1000)
    torch.manual_seed(7)
    wide = WideLinear(25, 1000)
    assert wide.weight_t.is_contiguous() and wide.weight_t.shape == (25, 1000)
    assert torch.equal(wide.weight, lin.weight) and torch.equal(wide.bias, lin.bias)
    h = torch.randn(3, 25, requires_grad=True)
    g = torch.randn(3, 1000)
    torch.testing.assert_close(wide(h), lin(h))
    (gh_wide,) = torch.autograd.grad((wide(h) * g).sum(), h)
    (gh_lin,) = torch.autograd.grad((lin(h) * g).sum(), h)
    torch.testing.assert_close(gh_wide, gh_lin)
    (wide(h) * g).sum().backward()
    torch.testing.assert_close(wide.weight_t.grad, h.detach().t() @ g)  # dL/dW^T = h^T g, by hand
    other = WideLinear(25, 1000)
    other.load_state_dict(lin.state_dict())  # {"weight": (1000, 25), "bias"}
    assert torch.equal(other.weight, lin.weight) and torch.equal(other.bias, lin.bias)
