"""Data layer: the Panel, readers for Qlib .bin and the CN layout, the synthetic market."""

from deepalpha.data.codes import normalize_code, normalize_codes, to_qlib_dir, to_tushare
from deepalpha.data.panel import Panel

__all__ = ["Panel", "normalize_code", "normalize_codes", "to_qlib_dir", "to_tushare"]
