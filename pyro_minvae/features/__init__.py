"""Audio and visual front end."""

from .config import FeatureConfig
from .stft import istft, power, power_frames, stft

__all__ = ["FeatureConfig", "stft", "istft", "power", "power_frames"]
