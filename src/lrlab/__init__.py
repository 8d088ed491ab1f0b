"""lrlab: measure and predict learning-rate warmup, schedules and batch size for Transformer pretraining."""

__version__: str  # set on first use by __getattr__ below


def __getattr__(name: str) -> str:
    # ``lrlab.__version__`` is looked up on first use: importlib.metadata costs ~70 ms, which every command
    # (`lrlab --help` too) would pay at import
    if name != "__version__":
        raise AttributeError(f"module 'lrlab' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("lrlab")
    except PackageNotFoundError:  # running from a source tree that was never installed
        value = "0.0.0"
    globals()["__version__"] = value
    return value
