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


def test_real_r2_and_bias(model):
    r2 = float(np.nanmean(model.r2))
    rep = bias_report(model)
    print(
        f"\nmean daily cross-sectional R^2 {r2:.3f}; factor bias median {rep['factor']['median']:.3f}, "
        f"random {rep['random']['median']:.3f}, eigen {rep['eigen']['median']:.3f}"
    )
    assert 0.15 <= r2 <= 0.6
    assert 0.7 <= rep["factor"]["median"] <= 1.3
    assert 0.7 <= rep["random"]["median"] <= 1.3
    assert len(model.factor_names) == 47


def test_real_exposures_sane(model):
    t = len(model.dates) // 2
    e = model.weights[t] > 0
    assert e.sum() > 1000
    X = model.styles[t][e].astype(np.float64)
    assert np.isfinite(X).all()
    cap = model.weights[t][e].astype(np.float64) ** 2
    size = X[:, model.style_names.index("Size")]
    # monotone in cap up to the MAD winsorisation of the largest caps (ties at the clip)
    rank = lambda x: np.argsort(np.argsort(x))  # noqa: E731
    assert np.corrcoef(rank(size), rank(np.log(cap)))[0, 1] > 0.99
    assert np.all(np.diff(size[np.argsort(cap)]) >= -1e-6)
    # the country factor moves with the market: most dates have |t| > 2
    assert np.nanmean(np.abs(model.tstats[:, 0]) > 2) > 0.5
