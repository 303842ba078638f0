"""Neural scorers: MLP / HC-MLP / mHC-MLP (tabular), GRU / RNN-LIN / RNN-LIN-GLU / DecompGRN
(sequence). Build them by name with ``build_model``; see ``registry``."""

from deepalpha.models.common import count_parameters
from deepalpha.models.decompgrn import cap_groups
from deepalpha.models.registry import MODELS, ModelSpec, build_model, model_kind

__all__ = ["MODELS", "ModelSpec", "build_model", "cap_groups", "count_parameters", "model_kind"]
