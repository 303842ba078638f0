"""Run-config validation: errors name the key and the file; every shipped config validates."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from deepalpha.cli import app
from deepalpha.errors import ConfigError
from deepalpha.workflows.config import BarraMLConfig, DecompGRNConfig, load_run_config
from deepalpha.workflows.data import resolve_data
from deepalpha.workflows.run import parse_sets

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("f", sorted((REPO / "configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(f):
    cfg = load_run_config(f)
    assert cfg.rolling.models and cfg.name


def test_unknown_key_names_key_and_file(tmp_path):
    p = write(tmp_path, "system: barra_ml\nrolling:\n  windos: [24]\n")
    with pytest.raises(ConfigError) as e:
        load_run_config(p)
    assert "rolling.windos: unknown key" in str(e.value) and str(p) in str(e.value)


def test_wrong_type_names_key(tmp_path):
    p = write(tmp_path, "system: decompgrn\nrolling:\n  train: {max_epochs: many}\n")
    with pytest.raises(ConfigError, match=r"rolling\.train\.max_epochs"):
        load_run_config(p)


def test_unknown_system(tmp_path):
    with pytest.raises(ConfigError, match="system: must be one of"):
        load_run_config(write(tmp_path, "system: qlib\n"))


def test_missing_data_path(tmp_path):
    cfg = BarraMLConfig.model_validate({"data": {"path": str(tmp_path / "nowhere")}})
    with pytest.raises(ConfigError, match=r"data\.path: .*nowhere.* not a folder in the CN layout"):
        resolve_data(cfg.data, tmp_path)


def test_cli_prints_one_line_for_config_errors(tmp_path):
    p = write(tmp_path, "system: decompgrn\ndata: {path: /no/such/dir}\n")
    from deepalpha.cli import main  # noqa: F401  (the entry point wraps DeepAlphaError)

    res = CliRunner().invoke(app, ["run", str(p), "--out", str(tmp_path / "run")])
    assert isinstance(res.exception, ConfigError)
    assert "data.path" in str(res.exception)


def test_overrides():
    assert parse_sets(["rolling.windows=[12, 24]", "name=x"]) == {
        "rolling.windows": [12, 24],
        "name": "x",
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_sets(["oops"])


def test_defaults_follow_design():
    a, b = BarraMLConfig(), DecompGRNConfig()
    assert a.rolling.windows == [24, 36, 72] and a.rolling.frequency == "monthly"
    assert [m.name for m in a.rolling.models] == ["mlp", "mhc_mlp", "hc_mlp"]
    assert b.rolling.dataset.length == 60 and b.rolling.dataset.horizon == 10
    assert [m.name for m in b.rolling.models] == ["gru", "rnn_lin", "rnn_lin_glu", "decompgrn"]
