"""Rolling retraining: schedule, label look-ahead trap, no look-ahead end to end, resume after
SIGKILL, executors giving identical bytes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from test_train_helpers import make_panel, small_rolling_config

from deepalpha.errors import ConfigError
from deepalpha.train.datasets import SequenceDataset
from deepalpha.train.rolling import (
    is_finished,
    job_dir,
    plan_jobs,
    retrain_indices,
    run_rolling,
    settings_fingerprint,
    split_for,
    window_start,
)

HELPER = Path(__file__).with_name("test_train_helpers.py")


@pytest.fixture(scope="module")
def panel():
    return make_panel()


@pytest.fixture(scope="module")
def reference(panel, tmp_path_factory):
    """An uninterrupted run of the small study (local executor)."""
    run = tmp_path_factory.mktemp("ref")
    return run_rolling(panel, small_rolling_config(), run, progress=False)


def test_retrain_schedule():
    dates = np.arange(np.datetime64("2020-01-01"), np.datetime64("2021-12-31"))
    dates = dates[(dates.astype("datetime64[D]").view("int64") - 4) % 7 < 5]  # weekdays
    m = retrain_indices(dates, "monthly", "2020-03-15", "2020-07-20")
    assert [str(dates[i]) for i in m] == [
        "2020-03-16", "2020-04-01", "2020-05-01", "2020-06-01", "2020-07-01"
    ]  # fmt: skip
    q = retrain_indices(dates, "quarterly", "2020-01-01", None)
    assert [str(dates[i]) for i in q][:3] == ["2020-01-01", "2020-04-01", "2020-07-01"]
    y = retrain_indices(dates, "yearly", "2020-01-01", None)
    assert [str(dates[i]) for i in y] == ["2020-01-01", "2021-01-01"]
    r = int(np.searchsorted(dates, np.datetime64("2021-03-10")))
    assert str(dates[window_start(dates, r, 3, "months")]) == "2020-12-11"
    assert window_start(dates, r, 10, "days") == r - 9


def test_split_respects_label_known_and_purges(panel):
    cfg = small_rolling_config(valid_fraction=0.25)
    ds = SequenceDataset(panel, window=10, horizon=3)
    jobs = plan_jobs(panel.dates, cfg, int(ds.sample_dates()[0]))
    assert len(jobs) == 4 and jobs[0].retrain == "2020-05-01"
    for j in jobs:
        sp = split_for(ds, j.r, j.r_next, j.window, cfg)
        assert (sp.train + 1 + 3 <= j.r).all() and (sp.valid + 1 + 3 <= j.r).all()
        assert sp.valid.max() + 1 + 3 == j.r  # the latest usable sample is used
        assert (sp.train + 1 + 3 <= sp.valid[0]).all()  # purged: no train label inside valid
        assert sp.train[0] >= window_start(panel.dates, j.r, 3, "months")
        assert sp.predict[0] == j.r and sp.predict[-1] == j.r_next - 1
        assert len(sp.valid) == pytest.approx(0.25 * (len(sp.valid) + len(sp.train) + 3), abs=3)
    assert [j.r_next for j in jobs[:-1]] == [j.r for j in jobs[1:]]
    assert str(panel.dates[jobs[-1].r_next - 1]) == "2020-08-20"


def test_predictions_are_complete_and_rerun_does_no_training(panel, reference):
    run = reference.run_dir
    assert len(reference.trained) == len(reference.jobs) == 4
    preds = pl.read_parquet(run / "predictions.parquet")
    assert preds.equals(reference.predictions)
    assert preds.columns == ["date", "asset", "model", "window", "seed", "score"]
    assert str(preds["date"].min()) == "2020-05-01" and str(preds["date"].max()) == "2020-08-20"
    assert preds.select(["date", "asset"]).is_duplicated().sum() == 0
    for j in reference.jobs:
        d = job_dir(run, j)
        assert {p.name for p in d.iterdir()} == {
            "predictions.parquet", "model.pt", "metrics.json", "train_log.jsonl"
        }  # fmt: skip
    mtimes = {j.key: (job_dir(run, j) / "model.pt").stat().st_mtime_ns for j in reference.jobs}
    again = run_rolling(panel, small_rolling_config(), run, progress=False)
    assert again.trained == [] and len(again.skipped) == 4
    assert again.predictions.equals(preds)
    assert mtimes == {j.key: (job_dir(run, j) / "model.pt").stat().st_mtime_ns for j in again.jobs}


def test_missing_job_is_retrained_to_the_same_bytes(panel, reference, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference.run_dir, run)
    victim = reference.jobs[2]
    shutil.rmtree(job_dir(run, victim))
    (run / "predictions.parquet").unlink()
    stale = job_dir(run, victim).parent / ".s0.tmp-1-deadbeef"
    stale.mkdir()
    res = run_rolling(panel, small_rolling_config(), run, progress=False)
    assert res.trained == [victim] and not stale.exists()
    assert res.predictions.equals(reference.predictions)


def test_config_or_data_change_refuses_the_run_dir(panel, reference):
    with pytest.raises(ConfigError, match="config"):
        run_rolling(panel, small_rolling_config(windows=[2]), reference.run_dir, progress=False)
    other = make_panel(seed=5)
    with pytest.raises(ConfigError, match="data"):
        run_rolling(other, small_rolling_config(), reference.run_dir, progress=False)
    with pytest.raises(ConfigError, match=r"differs at windows \(\[3\] -> \[2\]\)"):
        run_rolling(panel, small_rolling_config(windows=[2]), reference.run_dir, progress=False)
    # the executor is not part of the result fingerprint
    assert (
        small_rolling_config(executor="ray").result_fingerprint()
        == small_rolling_config().result_fingerprint()
    )


def test_run_from_an_older_version_without_a_new_setting_resumes(panel, reference, tmp_path):
    """run.json written before `train.stocks_per_date` existed: same results, so it resumes."""
    run = tmp_path / "run"
    shutil.copytree(reference.run_dir, run)
    meta = json.loads((run / "run.json").read_text())
    del meta["settings"]["train"]["stocks_per_date"]
    meta["config"] = settings_fingerprint(meta["settings"])
    (run / "run.json").write_text(json.dumps(meta))
    res = run_rolling(panel, small_rolling_config(), run, progress=False)
    assert res.trained == [] and res.predictions.equals(reference.predictions)
    # ...but the old run is still refused when the new setting is not at its default
    with pytest.raises(ConfigError, match="stocks_per_date"):
        run_rolling(
            panel,
            small_rolling_config(
                train=dict(max_epochs=4, patience=10, lr=1e-2, progress=False, stocks_per_date=5)
            ),
            run,
            progress=False,
        )


def test_a_run_may_add_seeds_and_models_but_not_change_them(panel, reference, tmp_path):
    """Adding a seed or a model to a folder trains only the new jobs (the old ones' bytes stay);
    a subset resumes; changing a held model's spec or a shared setting is refused by name."""
    from deepalpha.train.rolling import ModelSpec

    run = tmp_path / "run"
    shutil.copytree(reference.run_dir, run)
    before = {j.key: (job_dir(run, j) / "model.pt").read_bytes() for j in reference.jobs}
    lin, rnn = (
        ModelSpec(name="linear"),
        ModelSpec(name="rnn_lin", kwargs={"hidden": 4, "layers": 1}),
    )
    more = small_rolling_config(models=[lin, rnn], seeds=[0, 1])
    res = run_rolling(panel, more, run, progress=False)
    assert {(j.model, j.seed) for j in res.trained} == {
        ("linear", 1),
        ("rnn_lin", 0),
        ("rnn_lin", 1),
    }
    assert len(res.skipped) == 4
    assert before == {j.key: (job_dir(run, j) / "model.pt").read_bytes() for j in reference.jobs}
    old = res.predictions.filter((pl.col("model") == "linear") & (pl.col("seed") == 0))
    assert old.equals(reference.predictions)
    stored = json.loads((run / "run.json").read_text())["settings"]
    assert {m["name"]: m["seeds"] for m in stored["models"]} == {
        "linear": [0, 1],
        "rnn_lin": [0, 1],
    }
    # a subset (the original study) resumes with nothing to train, the record keeps both models
    again = run_rolling(panel, small_rolling_config(), run, progress=False)
    assert again.trained == [] and again.predictions.equals(reference.predictions)
    stored = json.loads((run / "run.json").read_text())["settings"]
    assert {m["name"] for m in stored["models"]} == {"linear", "rnn_lin"}
    # a held model's spec may not change, even when the run leaves it out
    run_json = (run / "run.json").read_bytes()
    wider = ModelSpec(name="rnn_lin", kwargs={"hidden": 8, "layers": 1})
    with pytest.raises(ConfigError, match=r"models\[rnn_lin\]\.kwargs\.hidden \(4 -> 8\)"):
        run_rolling(panel, small_rolling_config(models=[wider]), run, progress=False)
    with pytest.raises(ConfigError, match=r"differs at windows \(\[3\] -> \[2\]\)"):
        run_rolling(panel, small_rolling_config(windows=[2], seeds=[0, 1]), run, progress=False)
    assert (run / "run.json").read_bytes() == run_json


@pytest.mark.slow
def test_no_lookahead_predictions_up_to_D_unchanged(panel, reference, tmp_path):
    D = np.datetime64("2020-07-15")
    cut = int(np.searchsorted(panel.dates, D, "right"))
    rng = np.random.default_rng(42)
    data = panel.data.copy()
    data[:, cut:] *= rng.uniform(0.5, 2.0, size=data[:, cut:].shape).astype(np.float32)
    masks = {k: v.copy() for k, v in panel.masks.items()}
    masks["tradable"][cut:] = rng.random(masks["tradable"][cut:].shape) > 0.3
    perturbed = type(panel)(data, panel.dates, panel.assets, panel.fields, masks)
    res = run_rolling(perturbed, small_rolling_config(), tmp_path / "p", progress=False)
    before = pl.col("date") <= pl.lit(D).cast(pl.Date)
    a = reference.predictions.filter(before)
    b = res.predictions.filter(before)
    assert a.height > 1000 and a.equals(b)
    # and the perturbation did reach the predictions after D (the test can fail)
    assert not reference.predictions.filter(~before).equals(res.predictions.filter(~before))


@pytest.mark.slow
def test_resume_after_sigkill_gives_identical_predictions(panel, reference, tmp_path):
    run = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HELPER.parent), *sys.path])}
    proc = subprocess.Popen([sys.executable, str(HELPER), str(run)], env=env)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            done = [j for j in reference.jobs if is_finished(run, j)]
            if done or proc.poll() is not None:
                break
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done = [j for j in reference.jobs if is_finished(run, j)]
    assert 1 <= len(done) < len(reference.jobs), "kill must land after the first job, mid-run"
    assert not (run / "predictions.parquet").exists()
    res = run_rolling(panel, small_rolling_config(), run, progress=False)
    assert sorted(res.trained) == sorted(set(reference.jobs) - set(done))
    assert res.predictions.equals(reference.predictions)


@pytest.mark.slow
def test_process_pool_matches_local(panel, reference, tmp_path):
    res = run_rolling(
        panel, small_rolling_config(executor="process"), tmp_path / "pp", progress=False
    )
    assert len(res.trained) == 4
    assert res.predictions.equals(reference.predictions)
    for j in reference.jobs:
        a = (job_dir(reference.run_dir, j) / "model.pt").read_bytes()
        b = (job_dir(res.run_dir, j) / "model.pt").read_bytes()
        assert a == b, j.key
    assert not (tmp_path / "pp" / "data").exists()  # scratch copy removed


@pytest.mark.ray
@pytest.mark.slow
def test_ray_matches_local(panel, reference, tmp_path):
    try:
        import ray  # noqa: F401
    except Exception as e:  # pragma: no cover - depends on the environment
        pytest.skip(f"ray cannot be imported: {e}")
    cfg = small_rolling_config(executor="ray", address="local", workers=1)
    res = run_rolling(panel, cfg, tmp_path / "ray", progress=False)
    assert len(res.trained) == 4
    assert res.predictions.equals(reference.predictions)


def test_killed_parent_takes_its_pool_workers_with_it(tmp_path):
    """SIGKILL on the driver must not leave spawned workers training on (orphans)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HELPER.parent), *sys.path])}
    proc = subprocess.Popen(
        [sys.executable, str(HELPER.with_name("orphan_helper.py")), str(tmp_path)], env=env
    )
    pid_file = tmp_path / "pid"
    try:
        deadline = time.time() + 60
        while not (pid_file.is_file() and pid_file.read_text()) and time.time() < deadline:
            time.sleep(0.05)
        worker = int(pid_file.read_text())
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        stat = Path(f"/proc/{pid}/stat")
        return not (stat.is_file() and stat.read_text().split(") ")[-1].startswith("Z"))

    deadline = time.time() + 10
    while alive(worker) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(worker), "pool worker outlived its killed parent"


def _ray_task_pids() -> list[int]:
    """Processes whose title says they run a deepalpha job as a Ray task."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if b"ray::_call_arrays" in cmd:
            out.append(int(d.name))
    return out


@pytest.mark.ray
@pytest.mark.slow
def test_ray_worker_killed_mid_job_is_redone(panel, reference, tmp_path):
    """A Ray worker SIGKILLed while it trains a job: the task is re-run on a new worker, the run
    completes and its predictions equal a clean run's."""
    try:
        import ray  # noqa: F401
    except Exception as e:  # pragma: no cover - depends on the environment
        pytest.skip(f"ray cannot be imported: {e}")
    if not Path("/proc/self/cmdline").exists():  # pragma: no cover
        pytest.skip("needs /proc to find the Ray worker")
    killed: list[int] = []
    stop = threading.Event()

    def killer() -> None:
        while not stop.is_set() and not killed:
            pids = _ray_task_pids()
            if pids:
                time.sleep(0.2)  # mid-job: after the task started training
                try:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                except ProcessLookupError:
                    continue
            time.sleep(0.01)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        cfg = small_rolling_config(executor="ray", address="local", workers=1)
        res = run_rolling(panel, cfg, tmp_path / "ray_killed", progress=False)
    finally:
        stop.set()
        t.join()
    assert killed, "no Ray task process was found to kill"
    assert len(res.trained) == 4
    assert res.predictions.equals(reference.predictions)
