"""Masked per-date losses against numpy formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepalpha.errors import ConfigError
from deepalpha.train.losses import (
    ccc_loss,
    get_loss,
    ic_loss,
    mse_loss,
    pearson_ic,
    weighted_mse_loss,
)


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    p = torch.randn(50, generator=g, dtype=torch.float64)
    y = 0.3 * p + torch.randn(50, generator=g, dtype=torch.float64)
    y[[3, 17]] = float("nan")
    return p, y


def test_ic_loss_matches_numpy(data):
    p, y = data
    ok = torch.isfinite(y).numpy()
    ref = np.corrcoef(p.numpy()[ok], y.numpy()[ok])[0, 1]
    assert float(ic_loss(p, y)) == pytest.approx(-ref, abs=1e-12)
    assert float(pearson_ic(p, y)) == pytest.approx(ref, abs=1e-12)


def test_mask_excludes_entries_and_their_gradients(data):
    p, y = data
    mask = torch.ones(50, dtype=torch.bool)
    mask[:10] = False
    for fn in (ic_loss, mse_loss, weighted_mse_loss, ccc_loss):
        q = p.clone().requires_grad_(True)
        loss = fn(q, y, mask)
        loss.backward()
        assert torch.all(q.grad[:10] == 0) and torch.all(q.grad[[3, 17]] == 0)
        q2 = p.clone()
        q2[:10] = 1e6
        assert float(fn(q2, y, mask).detach()) == pytest.approx(float(loss.detach()), rel=1e-12)


def test_mse_wmse_ccc_formulas(data):
    p, y = data
    ok = torch.isfinite(y).numpy()
    a, b = p.numpy()[ok], y.numpy()[ok]
    assert float(mse_loss(p, y)) == pytest.approx(np.mean((a - b) ** 2))
    w = 1 + np.abs(b)
    assert float(weighted_mse_loss(p, y)) == pytest.approx(np.sum(w * (a - b) ** 2) / w.sum())
    ww = torch.linspace(0.1, 2, 50, dtype=torch.float64)
    wn = ww.numpy()[ok]
    assert float(weighted_mse_loss(p, y, weight=ww)) == pytest.approx(
        np.sum(wn * (a - b) ** 2) / wn.sum()
    )
    ccc = 2 * np.cov(a, b, bias=True)[0, 1] / (a.var() + b.var() + (a.mean() - b.mean()) ** 2)
    assert float(ccc_loss(p, y)) == pytest.approx(1 - ccc)
    assert float(ccc_loss(y.nan_to_num(), y)) == pytest.approx(0.0, abs=1e-12)


def test_degenerate_and_names():
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    y = torch.tensor([float("nan"), 1.0])
    for fn in (ic_loss, mse_loss, ccc_loss):
        loss = fn(p, y)
        loss.backward()
        assert torch.isfinite(loss)
    assert float(ic_loss(p, y).detach()) == 0.0
    assert get_loss("ic") is ic_loss and get_loss("wmse") is weighted_mse_loss
    with pytest.raises(ConfigError, match="unknown loss"):
        get_loss("hinge")
