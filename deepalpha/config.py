"""YAML configs validated by pydantic.

Every config model derives from `Strict`: unknown keys are errors. `validate_config` turns pydantic's
validation errors into one `ConfigError` that names the file and the dotted key, e.g.
``configs/x.yaml: models.0.hiden: unknown key``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from deepalpha.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base for config models: unknown keys are rejected, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _describe(err: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "<root>"
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    if err["type"] == "missing":
        return f"{key}: missing required key"
    return f"{key}: {err['msg']} (got {err.get('input')!r})"


def validate_config(data: dict[str, Any], model: type[M], *, source: str = "<config>") -> M:
    """Validate a mapping against ``model``; raise `ConfigError` naming ``source`` and the keys."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        lines = "; ".join(_describe(err) for err in e.errors())
        raise ConfigError(f"{source}: {lines}") from None


def read_yaml(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML mapping and apply dotted-key ``overrides`` (``{"data.path": "..."}``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value)
    return data


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data["a"]["b"] = value`` for ``dotted = "a.b"``, creating mappings on the way."""
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {dotted}: {k} is not a mapping")
    node[keys[-1]] = value


def dump_yaml(model: BaseModel, path: str | Path) -> None:
    """Write the resolved config (every default filled in)."""
    Path(path).write_text(yaml.safe_dump(model.model_dump(mode="json"), sort_keys=False))
