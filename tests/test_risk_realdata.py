"""The risk model on the real A-share data (``../shared/data/cn``; skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest

from deepalpha.risk.bias import bias_report
from deepalpha.risk.model import build_risk_model, load_inputs

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture(scope="module")
def model(cn_path):
    panel, groups, list_dates = load_inputs(cn_path)
    return build_risk_model(panel, groups, list_dates=list_dates)


def test_real_r2_and_bias(model, cn_path):
    """The issue-17 targets at the default one-day horizon (measured: factor median 1.006,
    styles 0.910-1.063, eigen 1.054, random 1.015, CSI 300/500/1000 proxies 1.014/1.019/1.009)."""
    from deepalpha.data.cn import load_cn

    r2 = float(np.nanmean(model.r2))
    panel = load_cn(cn_path, fields=["close"])
    members = {k: panel.masks[k] for k in ("csi300", "csi500", "csi1000")}
    rep = bias_report(model, members=members)
    styles = [rep["per_factor"][n] for n in model.style_names]
    print(
        f"\nmean daily cross-sectional R^2 {r2:.3f}; factor bias median {rep['factor']['median']:.3f}, "
        f"random {rep['random']['median']:.3f}, eigen {rep['eigen']['median']:.3f}, styles "
        f"{min(styles):.3f}-{max(styles):.3f}, index {[round(v['bias'], 3) for v in rep['index'].values()]}"
    )
    assert 0.3 <= r2 <= 0.6
    assert 0.95 <= rep["factor"]["median"] <= 1.05
    assert all(0.85 <= b <= 1.15 for b in styles)
    assert 0.95 <= rep["eigen"]["median"] <= 1.10
    assert 0.9 <= rep["random"]["median"] <= 1.1
    assert all(0.9 <= v["bias"] <= 1.1 for v in rep["index"].values())
    assert len(model.factor_names) == 47


def test_real_exposures_sane(model):
    t = len(model.dates) // 2
    e = model.weights[t] > 0
    assert e.sum() > 1000
    X = model.styles[t][e].astype(np.float64)
    assert np.isfinite(X).all()
    cap = model.weights[t][e].astype(np.float64) ** 2
    size = X[:, model.style_names.index("Size")]
    # monotone in cap, the largest caps included (no winsorisation ties them)
    rank = lambda x: np.argsort(np.argsort(x))  # noqa: E731
    assert np.corrcoef(rank(size), rank(np.log(cap)))[0, 1] > 0.99
    assert np.all(np.diff(size[np.argsort(cap)]) >= -1e-6)
    top = np.sort(size)[-50:]
    assert np.all(np.diff(top) > 0)
    # the country factor moves with the market: most dates have |t| > 2
    assert np.nanmean(np.abs(model.tstats[:, 0]) > 2) > 0.5
