"""cohost: an AI co-host for e-commerce livestreams."""

__version__ = "0.1.0"
