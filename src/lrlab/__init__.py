"""lrlab: measure and predict learning-rate warmup, schedules and batch size for Transformer pretraining."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lrlab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
