"""Evaluation on the real CN panel: per-universe results equal a slow per-date reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from deepalpha.evaluate.groups import quantile_groups
from deepalpha.evaluate.ic import forward_returns
from deepalpha.evaluate.summary import evaluate_signal, format_summary


@pytest.mark.realdata
@pytest.mark.slow
def test_reversal_on_real_panel_per_universe(cn_path):
    cn = pytest.importorskip("deepalpha.data.cn")
    p = cn.load_cn(cn_path, fields=["close"], start="2019-01-01", end="2020-12-31")
    close = p.field("close").astype(np.float64)
    T, N = close.shape
    r1 = np.full((T, N), np.nan)
    r1[:-1] = close[1:] / close[:-1] - 1.0  # close t -> t+1, aligned to t
    fac = np.full((T, N), np.nan)
    fac[20:] = -(close[20:] / close[:-20] - 1.0)
    h = 5
    label = forward_returns(r1, h)
    masks = {u: p.mask(u) & p.mask("tradable") for u in ("csi300", "csi500", "all")}
    res = evaluate_signal(
        fac,
        label,
        masks,
        r1,
        horizon=h,
        periods_per_year=252 / h,
        n_groups=10,
        decay_horizons=(1, 5),
    )
    assert set(res) == set(masks)
    for u, m in masks.items():
        got = res[u]["rank_ic_series"]
        for t in np.linspace(25, T - h - 2, 6).astype(int):
            v = m[t] & np.isfinite(fac[t]) & np.isfinite(label[t])
            assert got[t] == pytest.approx(stats.spearmanr(fac[t, v], label[t, v])[0], abs=1e-9)
        assert 0 < res[u]["rank_ic"]["n"] <= T
    # csi300 groups hold about 30 names each
    g = quantile_groups(fac, masks["csi300"], 10)
    sizes = (g[100][:, None] == np.arange(10)).sum(axis=0)
    assert sizes.min() >= 25 and sizes.max() <= 31
    text = format_summary(res, title="20-day reversal, 2019-2020")
    assert "csi500" in text
