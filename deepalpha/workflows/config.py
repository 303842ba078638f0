"""Run configurations of the two research systems (YAML, validated by pydantic).

Every default lives here. A YAML file picks its system with ``system: barra_ml`` or
``system: decompgrn``; unknown keys and wrong types raise `ConfigError` naming the key and file.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from deepalpha.config import Strict, read_yaml, validate_config
from deepalpha.errors import ConfigError
from deepalpha.train.rolling import DatasetConfig, ModelSpec, RollingConfig
from deepalpha.train.trainer import TrainConfig
from deepalpha.workflows.portfolio import PortfolioSpec


class SynthSpec(Strict):
    """The synthetic market written when ``data.path`` is ``synthetic``."""

    stocks: int = Field(400, ge=50)
    start: date = date(2012, 1, 1)
    end: date = date(2021, 12, 31)
    seed: int = 7


class DataSpec(Strict):
    """Where the data comes from: a folder in the CN layout, or ``synthetic``."""

    path: str = "synthetic"
    synthetic: SynthSpec = Field(default_factory=SynthSpec)
    start: date | None = None
    end: date | None = None
    cache: bool = True
    all_universe: Literal["auto", "csiall", "index_history"] = Field(
        "auto",
        description="how universe 'all' is made point in time (deepalpha.data.cn.load_cn)",
    )


class RiskSpec(Strict):
    """Risk-model options used by the workflows."""

    preset: Literal["responsive", "stable"] = "responsive"
    eigen_sims: int = Field(100, ge=0)


class EvalSpec(Strict):
    """Evaluation options."""

    universes: list[str] = Field(
        default_factory=lambda: ["csi300", "csi500", "csi1000", "all"], min_length=1
    )
    n_groups: int = Field(10, ge=2, le=100)
    start: date | None = Field(None, description="evaluate predictions dated on/after this")
    entry_filter: bool = Field(
        True,
        description="drop stocks untradable at the entry close (t+1; System A: the day after the "
        "month end) from IC (suspended/limit-up/limit-down) and groups (long: limit-up, short "
        "leg: limit-down)",
    )


def _barra_rolling() -> RollingConfig:
    return RollingConfig(
        models=[ModelSpec(name="mlp"), ModelSpec(name="mhc_mlp"), ModelSpec(name="hc_mlp")],
        windows=[24, 36, 72],
        window_unit="months",
        frequency="monthly",
        valid_fraction=0.2,
        dataset=DatasetConfig(kind="tabular", universe="all", label="label", label_lag=2),
        train=TrainConfig(max_epochs=30, patience=5, lr=1e-3),
    )


class BarraMLConfig(Strict):
    """System A: mHC-enhanced Barra ML factor (monthly)."""

    system: Literal["barra_ml"] = "barra_ml"
    name: str = "barra_ml"
    data: DataSpec = Field(default_factory=DataSpec)
    risk: RiskSpec = Field(default_factory=RiskSpec)
    rolling: RollingConfig = Field(default_factory=_barra_rolling)
    combine: list[Literal["equal", "ic"]] = Field(default_factory=lambda: ["equal", "ic"])
    ic_lookback: int = Field(12, ge=1, description="months of trailing IC for IC weights")
    orthogonalize: Literal["styles", "styles_industries"] = Field(
        "styles",
        description="what the composite is made orthogonal to before evaluation: the 15 styles "
        "(the report's recipe) or the styles and the industry dummies (industry-neutral)",
    )
    evaluate: EvalSpec = Field(default_factory=lambda: EvalSpec(universes=["all"]))
    portfolio: PortfolioSpec = Field(default_factory=PortfolioSpec)


def _decomp_rolling() -> RollingConfig:
    return RollingConfig(
        models=[
            ModelSpec(name="gru"),
            ModelSpec(name="rnn_lin"),
            ModelSpec(name="rnn_lin_glu"),
            ModelSpec(name="decompgrn"),
        ],
        windows=[84],
        window_unit="months",
        valid_periods=12,
        frequency="yearly",
        dataset=DatasetConfig(kind="sequence", universe="all", length=60, horizon=10),
        train=TrainConfig(max_epochs=20, patience=5, lr=1e-3),
    )


class DecompGRNConfig(Strict):
    """System B: GRU / RNN-LIN / RNN-LIN-GLU / DecompGRN on daily price-volume sequences."""

    system: Literal["decompgrn"] = "decompgrn"
    name: str = "decompgrn"
    data: DataSpec = Field(default_factory=DataSpec)
    rolling: RollingConfig = Field(default_factory=_decomp_rolling)
    evaluate: EvalSpec = Field(default_factory=EvalSpec)
    portfolio: PortfolioSpec = Field(default_factory=PortfolioSpec)


RunConfig = BarraMLConfig | DecompGRNConfig
SYSTEMS: dict[str, type[BarraMLConfig] | type[DecompGRNConfig]] = {
    "barra_ml": BarraMLConfig,
    "decompgrn": DecompGRNConfig,
}


def parse_config(data: dict[str, Any], source: str = "<config>") -> RunConfig:
    """Validate a mapping as a run config; ``system`` picks the schema."""
    system = data.get("system")
    if system not in SYSTEMS:
        raise ConfigError(f"{source}: system: must be one of {sorted(SYSTEMS)} (got {system!r})")
    cls = SYSTEMS[system]
    rolling = data.get("rolling")
    if isinstance(rolling, dict):  # a partial `rolling:` block amends the system's study
        field = cls.model_fields["rolling"]
        assert field.default_factory is not None
        study = field.default_factory().model_dump(mode="json", exclude_unset=True)
        data = {**data, "rolling": _merged(study, rolling)}
    return validate_config(data, cls, source=source)


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merged key by key, anything else (lists included,
    so ``models`` is replaced whole) taken from ``over``."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_run_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a run config YAML, apply dotted ``overrides``, validate."""
    return parse_config(read_yaml(path, overrides), str(path))
