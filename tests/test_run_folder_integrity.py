"""Run folders never lie: a refused re-run (other cached settings, other data) leaves every file
byte-identical; files are written atomically (a failed write keeps the old file, leaves no temp
file); the manifest records the code version and data fingerprint of every artefact.

The research stage is replaced by a stub (the folder logic is what is tested), so each run takes
a fraction of a second on the tiny CN layout.
"""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path

import pytest
from test_data_errors import write_tiny_cn

import deepalpha
from deepalpha import atomic
from deepalpha.errors import ConfigError, DataError
from deepalpha.workflows import run_folder
from deepalpha.workflows.config import parse_config
from deepalpha.workflows.run import dump_config, run_config


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_cn(tmp_path_factory.mktemp("rf") / "cn")


@pytest.fixture(autouse=True)
def stub_research(monkeypatch):
    """`run_decompgrn` -> no results; the report -> a small file (both are tested elsewhere)."""
    from deepalpha.report import html
    from deepalpha.workflows import decompgrn

    monkeypatch.setattr(decompgrn, "run_decompgrn", lambda *a, **k: {"results": []})

    def report(run_dir, out=None):
        p = Path(run_dir) / "report.html"
        atomic.atomic_write_text(p, "<html>stub</html>")
        return p

    monkeypatch.setattr(html, "write_report", report)


def cfg(tiny, **over):
    base = {
        "system": "decompgrn",
        "name": "rf",
        "data": {"path": str(tiny), "cache": False},
        "evaluate": {"universes": ["all"], "n_groups": 2},
    }
    for k, v in over.items():
        node = base
        *head, last = k.split(".")
        for h in head:
            node = node.setdefault(h, {})
        node[last] = v
    return parse_config(base)


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``folder``."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def made(tiny, tmp_path):
    run_dir = tmp_path / "run"
    run_config(cfg(tiny), run_dir, progress=False)
    return run_dir


def test_first_run_writes_manifest_with_provenance(made):
    m = json.loads((made / "manifest.json").read_text())
    assert m["code"]["package"] == deepalpha.__version__
    assert m["code"]["git"] is None or isinstance(m["code"]["git"], str)
    for name in ("config.yaml", "data.json", "metrics.json", "series.parquet", "report.html"):
        rec = m["artefacts"][name]
        assert rec["sha256"] == hashlib.sha256((made / name).read_bytes()).hexdigest()
        assert rec["data_fingerprint"] == m["data_fingerprint"] and rec["code"] == m["code"]
    data = json.loads((made / "data.json").read_text())
    assert data["fingerprint"] == m["data_fingerprint"]
    metrics = json.loads((made / "metrics.json").read_text())
    assert metrics["code"] == m["code"] and metrics["config_fingerprint"] == m["config_fingerprint"]
    assert not list(made.rglob(".*tmp*"))  # no temp file left behind


@pytest.mark.parametrize(
    "change, where",
    [
        ({"rolling.windows": [12]}, "rolling.windows"),
        ({"data.start": "2020-07-01"}, "data.start"),
        ({"system": "barra_ml"}, "system"),
    ],
)
def test_refused_rerun_leaves_every_file_identical(tiny, made, change, where):
    before = snapshot(made)
    with pytest.raises(ConfigError, match=f"different config fingerprint.*{where}"):
        run_config(cfg(tiny, **change), made, progress=False)
    assert snapshot(made) == before


def test_other_data_is_refused_before_any_write(tiny, made, tmp_path):
    other = write_tiny_cn(tmp_path / "cn2", seed=5)
    before = snapshot(made)
    c = cfg(tiny).model_copy(
        update={"data": cfg(tiny).data.model_copy(update={"path": str(other)})}
    )
    with pytest.raises(ConfigError, match="different data fingerprint"):
        run_config(c, made, progress=False)
    assert snapshot(made) == before


def test_evaluation_only_change_reruns_and_is_recorded(tiny, made):
    m0 = json.loads((made / "manifest.json").read_text())
    run_config(cfg(tiny, **{"evaluate.n_groups": 3}), made, progress=False)
    m1 = json.loads((made / "manifest.json").read_text())
    assert m1["config_fingerprint"] == m0["config_fingerprint"]
    assert "n_groups: 3" in (made / "config.yaml").read_text()
    assert m1["artefacts"]["config.yaml"]["sha256"] != m0["artefacts"]["config.yaml"]["sha256"]


def test_legacy_folder_without_manifest_is_checked_too(tiny, tmp_path):
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(dump_config(cfg(tiny)))
    (run_dir / "run.log").write_text("2025-01-01 00:00:00 data\n")
    (run_dir / "data.json").write_text("{}")
    before = snapshot(run_dir)
    with pytest.raises(ConfigError, match=r"rolling\.frequency"):
        run_config(cfg(tiny, **{"rolling.frequency": "monthly"}), run_dir, progress=False)
    assert snapshot(run_dir) == before
    # a config today's schema cannot read: the rolling fingerprint guards the jobs, the run resumes
    (run_dir / "config.yaml").write_text("system: nonsense\n")
    run_config(cfg(tiny), run_dir, progress=False)
    assert (run_dir / "manifest.json").is_file() and "system: decompgrn" in (
        run_dir / "config.yaml"
    ).read_text()


def test_unreadable_manifest_is_refused(tiny, made):
    (made / "manifest.json").write_text("{not json")
    before = snapshot(made)
    with pytest.raises(ConfigError, match="unreadable run manifest"):
        run_config(cfg(tiny), made, progress=False)
    assert snapshot(made) == before


# ------------------------------------------------------------------------ atomic writes, disk
def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    p = tmp_path / "metrics.json"
    p.write_text("old")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", full)
    with pytest.raises(DataError, match="cannot write: No space left on device") as e:
        atomic.atomic_write_text(p, "new")
    assert e.value.file == str(p)
    assert p.read_text() == "old" and [x.name for x in tmp_path.iterdir()] == ["metrics.json"]


def test_writer_exception_removes_temp(tmp_path):
    p = tmp_path / "x.parquet"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(p) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer crashed")
    assert p.read_bytes() == b"old" and [x.name for x in tmp_path.iterdir()] == ["x.parquet"]


def test_unwritable_output_folder_is_a_clear_error(tiny, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot write to the output folder"):
        atomic.ensure_writable(blocker / "run")
    with pytest.raises(ConfigError, match="cannot write to the output folder"):
        run_config(cfg(tiny), blocker / "run", progress=False)
    assert blocker.read_text() == "not a folder"


def test_disk_full_during_a_run_leaves_no_half_file(tiny, made, monkeypatch):
    before = snapshot(made)
    real = atomic.os.replace

    def full(src, dst):
        if str(dst).endswith("metrics.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", full)
    with pytest.raises(DataError, match="No space left on device"):
        run_config(cfg(tiny), made, progress=False)
    after = snapshot(made)
    assert after["metrics.json"] == before["metrics.json"]
    assert not [k for k in after if ".tmp" in k]


def test_check_settings_reads_only(tiny, made):
    before = snapshot(made)
    assert run_folder.check_settings(made, cfg(tiny))["data_fingerprint"]
    assert run_folder.check_settings(made.parent / "new", cfg(tiny)) is None
    assert snapshot(made) == before and not (made.parent / "new").exists()


def test_adding_seeds_or_models_is_allowed_changing_a_model_is_not(tiny, made):
    """A folder's study may grow (more seeds, another model; the rolling jobs already done are
    reused), but a held model's spec may not change: refused by name, before any write."""
    rolling = cfg(tiny).rolling.model_dump(mode="json")
    models = rolling["models"]
    run_config(cfg(tiny, rolling={**rolling, "seeds": [0, 1]}), made, progress=False)
    more = [*models, {"name": "linear", "seeds": [3]}]
    run_config(cfg(tiny, rolling={**rolling, "models": more}), made, progress=False)
    before = snapshot(made)
    changed = [{**models[0], "kwargs": {"hidden": 8}}]
    key = models[0].get("tag") or models[0]["name"]
    with pytest.raises(ConfigError, match=rf"rolling\.models\[{key}\]\.kwargs"):
        run_config(cfg(tiny, rolling={**rolling, "models": changed}), made, progress=False)
    assert snapshot(made) == before
