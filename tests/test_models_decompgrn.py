"""DecompGRN: cap groups, group de-meaning, the model against a step-by-step reference,
permutation equivariance, locality of group changes, parameter counts."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from deepalpha.models.common import count_parameters
from deepalpha.models.decompgrn import DecompGRN, cap_groups, group_demean
from deepalpha.models.rnn import GRUModel


def _batch(n=40, t=8, f=6, n_groups=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, t, f, generator=g)
    groups = cap_groups(torch.randn(n, generator=g), n_groups)
    return x, groups


def test_cap_groups_equal_counts_nan_own_bucket_ties_together():
    log_cap = torch.arange(100.0).flip(0)
    groups = cap_groups(log_cap, 20)
    assert groups.dtype == torch.long
    assert torch.bincount(groups).tolist() == [5] * 20
    assert groups[0] == 19 and groups[-1] == 0  # largest cap in the top bucket
    log_cap[[3, 7]] = float("nan")
    assert (cap_groups(log_cap, 20)[[3, 7]] == 20).all()
    ties = cap_groups(torch.tensor([1.0, 2.0, 2.0, 2.0, 3.0]), 5)
    assert ties[1] == ties[2] == ties[3]
    assert (cap_groups(torch.full((4,), float("nan")), 20) == 20).all()


def test_group_demean_matches_loop():
    y = torch.randn(4, 30, 3)
    groups = torch.randint(0, 6, (30,))
    expected = y.clone()
    for grp in groups.unique():
        members = groups == grp
        expected[:, members] -= y[:, members].mean(dim=1, keepdim=True)
    torch.testing.assert_close(group_demean(y, groups), expected)
    torch.testing.assert_close(group_demean(y, None), y - y.mean(1, keepdim=True))
    torch.testing.assert_close(
        group_demean(y, torch.zeros(30, dtype=torch.long)), group_demean(y, None)
    )


def _reference(model, x, groups):
    """DESIGN section 8 step by step: loops over time and over groups."""
    hd = model.hidden
    w1, b1 = model.layer1.gates.weight, model.layer1.gates.bias
    wf1, wc1, wo1 = w1.split(hd)
    bf1, bc1, bo1 = b1.split(hd)
    n, t_len, _ = x.shape
    h = torch.zeros(n, hd)
    y1 = []
    for t in range(t_len):
        f = torch.sigmoid(x[:, t] @ wf1.T + bf1)
        h = f * h + (1 - f) * F.silu(x[:, t] @ wc1.T + bc1)
        y1.append(torch.sigmoid(x[:, t] @ wo1.T + bo1) * h)
    wf, wc, wo = model.w2.weight.split(hd)
    bf, bc, bo = model.w2.bias.split(hd)
    uf, uo = model.u2.weight.split(hd)
    h = torch.zeros(n, hd)
    for t in range(t_len):
        d = y1[t].clone()
        for grp in groups.unique():
            members = groups == grp
            d[members] -= y1[t][members].mean(0)
        f = torch.sigmoid(y1[t] @ wf.T + d @ uf.T + bf)
        o = torch.sigmoid(y1[t] @ wo.T + d @ uo.T + bo)
        h = f * h + (1 - f) * F.silu(y1[t] @ wc.T + bc)
    return (o * h @ model.head.weight.T + model.head.bias).squeeze(-1)


@pytest.mark.parametrize("backend", ["fused", "loop", "chunked", "reference"])
def test_matches_step_by_step_reference(backend):
    torch.manual_seed(0)
    model = DecompGRN(6, hidden=12, backend=backend)
    x, groups = _batch()
    torch.testing.assert_close(model(x, groups), _reference(model, x, groups), atol=1e-5, rtol=1e-5)


def test_permuting_stocks_permutes_scores():
    torch.manual_seed(0)
    model = DecompGRN(6, hidden=12)
    x, groups = _batch()
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(
        model(x[perm], groups[perm]), model(x, groups)[perm], atol=1e-6, rtol=1e-5
    )


def test_moving_one_stock_changes_only_its_old_and_new_group():
    torch.manual_seed(0)
    model = DecompGRN(6, hidden=12)
    x, groups = _batch(n_groups=5)
    k = 0
    old, new = groups[k].item(), (groups[k].item() + 1) % 5
    moved = groups.clone()
    moved[k] = new
    before, after = model(x, groups), model(x, moved)
    untouched = (groups != old) & (groups != new)
    assert untouched.any()
    torch.testing.assert_close(after[untouched], before[untouched], atol=0, rtol=0)
    for grp in (old, new):  # every other member of both groups sees a new group mean
        members = (groups == grp) & (torch.arange(len(groups)) != k)
        assert ((after[members] - before[members]).abs() > 1e-7).all()
    assert (after[k] - before[k]).abs() > 1e-7


def test_changing_features_of_one_stock_leaves_other_groups_alone():
    torch.manual_seed(0)
    model = DecompGRN(6, hidden=12)
    x, groups = _batch()
    x2 = x.clone()
    x2[0] += 1.0
    other = groups != groups[0]
    torch.testing.assert_close(model(x2, groups)[other], model(x, groups)[other], atol=0, rtol=0)


def test_parameter_count_formula_and_ratio_to_gru():
    f = 6
    for h in (12, 56, 64):
        expected = 3 * h * (f + 1) + 5 * h * h + 3 * h + h + 1
        assert count_parameters(DecompGRN(f, hidden=h)) == expected
    gru = count_parameters(GRUModel(f))
    assert gru == 3 * (f * 64 + 64 * 64 + 2 * 64) + 3 * (2 * 64 * 64 + 2 * 64) + 65 == 38_849
    ratio = count_parameters(DecompGRN(f)) / gru
    assert 0.4 <= ratio <= 0.6
    assert math.isclose(ratio, 17_081 / 38_849)


def test_shapes_and_one_group_default():
    torch.manual_seed(0)
    model = DecompGRN(6, hidden=12)
    x, _ = _batch(n=9, t=5)
    out = model(x)
    assert out.shape == (9,)
    torch.testing.assert_close(out, model(x, torch.zeros(9, dtype=torch.long)))
