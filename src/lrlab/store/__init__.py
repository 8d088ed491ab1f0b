"""The run store: every run of every study in one SQLite file, with its config, status, metrics and artifacts.

    from lrlab.store import Store
    with Store("runs.db") as store:
        for run in store.runs("lr-sweep"):
            steps, loss = store.curve(run["id"], "val_loss")

See docs/store.md for the schema, the concurrency rules and what was measured.
"""

from lrlab.store.db import Store, canonical, config_hash
from lrlab.store.export import export
from lrlab.store.schema import SCHEMA_VERSION, STATUSES
from lrlab.store.sink import StoreSink

__all__ = ["SCHEMA_VERSION", "STATUSES", "Store", "StoreSink", "canonical", "config_hash", "export"]
