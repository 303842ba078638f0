"""deepalpha: neural stock-selection (alpha) research on equity panels."""

from deepalpha.errors import ConfigError, DataError, DeepAlphaError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "DeepAlphaError", "__version__"]
