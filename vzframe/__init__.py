"""vzframe: train vision-language models by self-play in social games (Vision-Zero)."""

__version__ = "0.2.0"
