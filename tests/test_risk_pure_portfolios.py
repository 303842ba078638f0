"""Pure factor portfolios (issue 17 item 10): unit exposure to their factor, zero elsewhere."""

from __future__ import annotations

import numpy as np
from risk_toy import toy_model

from deepalpha.risk.pure_portfolios import pure_factor_portfolios, pure_factor_turnover
from deepalpha.risk.regression import regress


def test_unit_exposure_and_factor_return():
    m = toy_model()
    P, S = m.n_industries, len(m.style_names)
    t = 12
    pp = pure_factor_portfolios(m, m.dates[t])
    E = pp.exposures
    K = 1 + P + S
    # styles: exactly e_k (no industry, country or other style exposure)
    for k in range(1 + P, K):
        np.testing.assert_allclose(E[k], np.eye(K)[k], atol=1e-10)
        np.testing.assert_allclose(pp.holdings[k].sum(), 0.0, atol=1e-10)
    # industries: long j, short the cap-weighted market (industry shares w), dollar neutral
    v = np.asarray(m.weights[t], np.float64)
    ind = np.asarray(m.industry_ids[t])
    cap = v**2
    w = np.array([cap[ind == j].sum() for j in range(P)]) / cap.sum()
    for j in range(P):
        want = np.zeros(K)
        want[1 : 1 + P] = -w
        want[1 + j] += 1.0
        np.testing.assert_allclose(E[1 + j], want, atol=1e-10)
    # country: fully invested at the market's industry mix, no style exposure
    np.testing.assert_allclose(E[0, 0], 1.0, atol=1e-10)
    np.testing.assert_allclose(E[0, 1 + P :], 0.0, atol=1e-10)
    # the holdings earn the regression's factor returns (every ESTU stock has a return here)
    rng = np.random.default_rng(1)
    r = rng.normal(0, 0.02, (1, len(m.assets)))
    res = regress(m.styles[t : t + 1], m.industry_ids[t : t + 1], P, r, m.weights[t : t + 1])
    np.testing.assert_allclose(pp.holdings @ r[0], res.factor_returns[0], atol=1e-12)
    assert not pp.degenerate.any()
    df = pp.frame(("A",))
    assert df.columns == ["factor", "asset", "weight"] and set(df["factor"]) == {"A"}


def test_turnover_and_degenerate_style():
    m = toy_model()
    m.styles[20, :, 1] = 0.0  # style B all zero on that date
    pp = pure_factor_portfolios(m, m.dates[20])
    k = m.factor_names.index("B")
    assert pp.degenerate[k] and not pp.degenerate[np.arange(len(m.factor_names)) != k].any()
    np.testing.assert_array_equal(pp.holdings[k], 0.0)
    tv = pure_factor_turnover(m, m.dates[[10, 11, 20]], ("A", "B"))
    assert tv.height == 6 and tv["turnover"].null_count() == 2
    a = tv.filter(tv["factor"] == "A")
    h10 = pure_factor_portfolios(m, m.dates[10]).holdings[m.factor_names.index("A")]
    h11 = pure_factor_portfolios(m, m.dates[11]).holdings[m.factor_names.index("A")]
    np.testing.assert_allclose(a["turnover"][1], 0.5 * np.abs(h11 - h10).sum())
    assert tv.filter(tv["factor"] == "B")["gross"][2] == 0.0
