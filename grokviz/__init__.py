"""grokviz: train, load and explain grokking in a 1-layer transformer on modular arithmetic."""

from .config import Config
from .errors import GrokvizError

__all__ = ["Config", "GrokvizError"]
