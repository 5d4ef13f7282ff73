"""grokviz: train, load and explain grokking in a 1-layer transformer on modular arithmetic."""

from grokviz.core.config import Config
from grokviz.errors import GrokvizError

__all__ = ["Config", "GrokvizError"]
