"""Run folders that never lie: settings checked before any write, atomic files, provenance.

A run folder caches expensive artefacts (the synthetic market, the monthly risk model, the
rolling jobs) and re-evaluates on every run. What those caches depend on -- the *cached
settings*: the system, the data spec (without its path and cache flag), the risk options and the
result-changing rolling settings -- is fingerprinted, and so is the loaded panel. A run into a
folder made with other cached settings or other data is refused (`ConfigError`) **before** any
file of the folder is touched; evaluation-only settings (universes, groups, combine, portfolio,
name) may change between runs, and the re-run rewrites every file that depends on them.

``manifest.json`` records both fingerprints, the cached settings, and for every artefact (path
relative to the folder) its SHA-256, size, the code version (package version + ``git describe``
when the package sits in a git checkout) and the data fingerprint that produced it.

Every file is written through `deepalpha.atomic` (a temporary file in the same folder, then
``os.replace``), so a crash or a full disk leaves the previous file intact.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from deepalpha.atomic import atomic_path, atomic_write_bytes, atomic_write_text, ensure_writable
from deepalpha.errors import ConfigError

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_data",
    "check_settings",
    "code_version",
    "ensure_writable",
    "write_manifest",
]

MANIFEST = "manifest.json"
FORMAT = 1


# ----------------------------------------------------------------------------- provenance
@lru_cache(maxsize=1)
def code_version() -> dict[str, str | None]:
    """``{"package": "0.1.0", "git": "v0.1-12-gabc1234-dirty" or None}`` (git describe of the
    checkout holding the package, when there is one)."""
    import deepalpha

    root = Path(deepalpha.__file__).resolve().parents[1]
    git = None
    if (root / ".git").exists():
        try:
            r = subprocess.run(
                ["git", "-C", str(root), "describe", "--always", "--dirty", "--tags"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            git = (r.stdout.strip() or None) if r.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            git = None
    return {"package": deepalpha.__version__, "git": git}


def code_label() -> str:
    """``deepalpha 0.1.0 (git abc1234-dirty)`` or ``deepalpha 0.1.0``."""
    v = code_version()
    return f"deepalpha {v['package']}" + (f" (git {v['git']})" if v["git"] else "")


def cached_settings(cfg: Any) -> dict[str, Any]:
    """The settings a run folder's caches depend on (see the module docstring), as JSON."""
    d = cfg.model_dump(mode="json")
    data = {k: v for k, v in d["data"].items() if k not in ("path", "cache")}
    out: dict[str, Any] = {
        "system": d["system"],
        "data": data,
        "rolling": cfg.rolling.result_settings(),
    }
    if "risk" in d:
        out["risk"] = d["risk"]
    return out


def fingerprint(settings: dict[str, Any]) -> str:
    """16-hex SHA-256 of a JSON-able mapping (sorted keys)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Dotted keys where two JSON trees differ, as ``key (old -> new)``."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}" if path else k)
        return out
    return [] if a == b else [f"{path} ({a!r} -> {b!r})"]


# ----------------------------------------------------------------------------- the checks
def read_manifest(run_dir: str | Path) -> dict[str, Any] | None:
    """The folder's manifest, or None when it has none; unreadable -> `ConfigError`."""
    p = Path(run_dir) / MANIFEST
    if not p.is_file():
        return None
    try:
        m = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{p}: unreadable run manifest ({e}); use a new run directory") from None
    if not isinstance(m, dict) or "settings" not in m:
        raise ConfigError(f"{p}: not a run manifest; use a new run directory")
    return m


def _stored_settings(run_dir: Path) -> dict[str, Any] | None:
    """Cached settings of a folder written before manifests existed (from its config.yaml).

    None when there is none, or when today's schema cannot read it (a key renamed since): the
    rolling jobs' own fingerprint (``rolling/run.json``) still guards the expensive part then,
    and refusing would strand a long run that only wants to resume.
    """
    p = run_dir / "config.yaml"
    if not p.is_file():
        return None
    from deepalpha.workflows.config import parse_config

    try:
        raw = yaml.safe_load(p.read_text()) or {}
        return cached_settings(parse_config(raw, str(p)))
    except (ConfigError, OSError, yaml.YAMLError, AttributeError, TypeError):
        return None


def check_settings(run_dir: str | Path, cfg: Any) -> dict[str, Any] | None:
    """Refuse (`ConfigError`, naming the differing keys) a run into a folder whose caches were
    made with other settings. Reads only. Returns the manifest (None for a new folder)."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    from deepalpha.train.rolling import check_study

    check_study(run_dir / "rolling", cfg.rolling)  # the jobs' own record, all models ever run
    have = manifest["settings"] if manifest else _stored_settings(run_dir)
    if have is None:
        return manifest
    want = cached_settings(cfg)
    if fingerprint(_shared(have)) != fingerprint(_shared(want)) or _study_diff(have, cfg):
        diff = sorted(
            _diff(_shared(have), _shared(want)), key=lambda d: not d.startswith("system ")
        )
        diff += _study_diff(have, cfg)
        raise ConfigError(
            f"{run_dir}: existing run has a different config fingerprint "
            f"({fingerprint(have)} != {fingerprint(want)}): differs at {', '.join(diff[:6])}"
            f"{f' and {len(diff) - 6} more' if len(diff) > 6 else ''}; "
            "nothing was written; use a new run directory"
        )
    return manifest


def _shared(settings: dict[str, Any]) -> dict[str, Any]:
    """Cached settings without the rolling study's models and seeds: a run may add models or
    seeds to a folder (`deepalpha.train.rolling.study_mismatch` checks the models it holds)."""
    rolling = {k: v for k, v in settings.get("rolling", {}).items() if k not in ("models", "seeds")}
    return {**settings, "rolling": rolling}


def _study_diff(have: dict[str, Any], cfg: Any) -> list[str]:
    """Model specs that changed, against the manifest's and the rolling folder's records."""
    from deepalpha.train.rolling import study_mismatch

    stored = have.get("rolling")
    if not isinstance(stored, dict) or "models" not in stored:
        return []
    return [f"rolling.{d}" for d in study_mismatch(stored, cfg.rolling) if d.startswith("models[")]


def check_data(run_dir: str | Path, manifest: dict[str, Any] | None, data_fp: str) -> None:
    """Refuse a run whose panel differs from the one the folder was made with."""
    have = (manifest or {}).get("data_fingerprint")
    if have is not None and have != data_fp:
        raise ConfigError(
            f"{run_dir}: existing run has a different data fingerprint ({have} != {data_fp}); "
            "nothing was written; use a new run directory"
        )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(
    run_dir: str | Path,
    cfg: Any,
    data_fp: str,
    artefacts: Sequence[str | Path] = (),
    *,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``manifest.json`` atomically: fingerprints, cached settings, code version, and a
    record for each of ``artefacts`` (paths inside ``run_dir``; records of earlier runs are
    kept for files not rewritten). Returns the manifest."""
    run_dir = Path(run_dir)
    settings = cached_settings(cfg)
    code = code_version()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    recs = dict((previous or {}).get("artefacts", {}))
    for a in artefacts:
        p = Path(a) if Path(a).is_absolute() else run_dir / a
        if not p.is_file():
            continue
        recs[p.relative_to(run_dir).as_posix()] = {
            "sha256": file_sha256(p),
            "bytes": p.stat().st_size,
            "code": code,
            "data_fingerprint": data_fp,
            "written": now,
        }
    m = {
        "format": FORMAT,
        "config_fingerprint": fingerprint(settings),
        "data_fingerprint": data_fp,
        "code": code,
        "settings": settings,
        "created": (previous or {}).get("created", now),
        "updated": now,
        "artefacts": dict(sorted(recs.items())),
    }
    atomic_write_text(run_dir / MANIFEST, json.dumps(m, indent=1))
    return m


def run_artefacts(run_dir: str | Path) -> list[Path]:
    """The files a run writes (config, data summary, metrics, series, signals, report,
    portfolio outputs, combined predictions) that exist in ``run_dir``."""
    run_dir = Path(run_dir)
    names = ["config.yaml", "data.json", "metrics.json", "series.parquet", "report.html"]
    out = [run_dir / n for n in names]
    out += sorted((run_dir / "signals").glob("*.parquet"))
    out += sorted(p for p in (run_dir / "portfolio").rglob("*") if p.is_file())
    out.append(run_dir / "rolling" / "predictions.parquet")
    return [p for p in out if p.is_file() and not p.name.startswith(".")]
