"""What each consumer needs from a data folder, checked before it starts.

System B (DecompGRN), its evaluation and the loader itself run on bars alone (a plain Qlib
folder). The Barra-style risk model -- and so System A and the optimiser's ``risk: model`` -- also
needs market cap, valuation and report fundamentals and an industry table; `require_risk_inputs`
stops with one `DataError` that lists every missing input and how to add it.
"""

from __future__ import annotations

from pathlib import Path

from deepalpha.data.layout import Layout, as_layout
from deepalpha.errors import DataError

#: fields the risk model's default styles read that come from fundamentals (see RISK_FIELDS)
RISK_FUNDAMENTAL_FIELDS = (
    "mktcap",
    "pe",
    "pb",
    "dv_ratio",
    "ebit",
    "debt_to_assets",
    "roe",
    "roa",
)


def risk_inputs_missing(path: str | Path | Layout) -> list[str]:
    """Inputs of the risk model the folder lacks, one line each (``[]`` when complete)."""
    from deepalpha.data.cn import _FUND_DEPS, field_available, probe_sources, read_stock_list

    lay = as_layout(path)
    assets, _ = read_stock_list(lay)
    src = probe_sources(lay, assets)
    out = []
    for f in RISK_FUNDAMENTAL_FIELDS:
        if not field_available(f, src):
            files = ", ".join(f"fundamentals/{d}.csv" for d in _FUND_DEPS[f])
            out.append(f"{f} ({files})")
    ind = lay.industry
    if not (ind / "stock_basic.csv").is_file() and not (ind / "csrc_industry.csv").is_file():
        out.append("industries (industry/stock_basic.csv or industry/csrc_industry.csv)")
    return out


def require_risk_inputs(path: str | Path | Layout, purpose: str = "the risk model") -> None:
    """Raise one `DataError` naming every missing risk-model input of the folder at ``path``
    and how to add them; return quietly when nothing is missing."""
    from deepalpha.data.cn import HOW_TO_ADD

    lay = as_layout(path)
    missing = risk_inputs_missing(lay)
    if missing:
        raise DataError(
            f"{purpose} needs inputs this data folder lacks: {'; '.join(missing)}. To run it, "
            f"{HOW_TO_ADD}. System B (DecompGRN) and its evaluation run without them",
            file=lay.root,
        )


def has_market_cap(path: str | Path | Layout) -> bool:
    """Whether the folder can give ``mktcap`` (a daily ``mktcap.day.bin`` or
    ``fundamentals/total_mv.csv``); without it, consumers use ``size_proxy``."""
    from deepalpha.data.cn import field_available, probe_sources, read_stock_list

    lay = as_layout(path)
    assets, _ = read_stock_list(lay)
    return field_available("mktcap", probe_sources(lay, assets))
