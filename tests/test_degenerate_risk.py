"""A risk model on too few stocks is refused (a single stock used to "succeed"): the regression
needs K - 1 free factors + `MIN_RISK_DOF` stocks on at least one date."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from cli_main import run_main
from test_data_errors import write_tiny_cn
from test_risk_model import make_panel

from deepalpha.errors import DataError
from deepalpha.guards import MIN_RISK_DOF, check_risk_stocks
from deepalpha.risk.model import RiskConfig, build_risk_model

CFG = RiskConfig(min_listed_days=20, eigen_sims=0, min_cov_obs=40, chunk=32)


def test_check_risk_stocks_rule():
    dates = np.arange("2020-01-01", "2020-01-11", dtype="datetime64[D]")
    K = 21
    need = K - 1 + MIN_RISK_DOF
    n = np.full(10, need - 1)
    with pytest.raises(DataError, match=f"at most {need - 1} stock") as e:
        check_risk_stocks(n, dates, K, file="x")
    assert e.value.file == "x" and e.value.date == "2020-01-01"
    n[7] = need
    assert check_risk_stocks(n, dates, K) == 1
    with pytest.raises(DataError, match="at most 0 stock"):
        check_risk_stocks(np.zeros(0, int), dates[:0], K)


@pytest.mark.parametrize("n_stocks", [1, 2, 12])
def test_build_refuses_too_few_stocks(n_stocks):
    panel, groups = make_panel(T=60, N=n_stocks, P=1)
    panel.meta["path"] = "somewhere/cn"
    with pytest.raises(DataError, match="too few stocks for the risk regression") as e:
        build_risk_model(panel, groups, config=CFG)
    assert e.value.file == "somewhere/cn"


def test_monthly_build_counts_month_ends():
    panel, groups = make_panel(T=60, N=12, P=1)
    with pytest.raises(DataError, match="too few stocks"):
        build_risk_model(panel, groups, freq="monthly", config=CFG)


def test_min_dof_is_configurable():
    panel, groups = make_panel(T=60, N=24, P=2)
    # K = 1 + 2 + 15 = 18: 24 stocks pass with min_dof 5, not with 10 (17 + 10 = 27)
    with pytest.raises(DataError):
        build_risk_model(panel, groups, config=CFG)
    m = build_risk_model(panel, groups, config=dataclasses.replace(CFG, min_dof=5))
    assert m.meta["config"]["min_dof"] == 5


def test_cli_risk_build_on_four_stocks(tmp_path, capsys):
    cn = write_tiny_cn(tmp_path / "cn")
    out = tmp_path / "risk"
    r = run_main(["risk", "build", cn, "--out", out, "--no-cache", "--no-bias"], capsys)
    assert r.code == 2, (r.out, r.err)
    err = " ".join(r.err.split())
    assert "Traceback" not in err and "too few stocks for the risk regression" in err
    assert f"file={cn}" in err.replace(" ", "") or f"file={cn}" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "meta, needle",
    [
        ("{bad", "JSONDecodeError"),
        ('{"format_version": 1, "freq": "daily", "style_names": [], "industry_names": []}',
         "factor_returns.parquet"),
    ],
)  # fmt: skip
def test_damaged_risk_folder_is_one_error(tmp_path, capsys, meta, needle):
    d = tmp_path / "risk"
    d.mkdir()
    (d / "meta.json").write_text(meta)
    r = run_main(["risk", "info", d], capsys)
    err = " ".join(r.err.split())
    assert r.code == 2 and "Traceback" not in err, r.err
    assert "damaged risk model directory" in err and needle in err
