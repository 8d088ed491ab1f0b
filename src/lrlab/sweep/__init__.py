"""Sweeps: grids of training runs over LR, batch size, schedule, optimizer or any config key, executed on local
worker processes or on Ray, recorded in the run store, resumable after a crash.

    from lrlab.store import Store
    from lrlab.sweep import load_study, execute, summarize
    study = load_study("examples/sweep-tiny.toml")
    with Store("runs.db") as store:
        execute(study, store, workers=2)
        print(summarize(store, study.name).rows)

See docs/sweep.md for the study-file grammar, the executors and the crash behaviour.
"""

from lrlab.sweep.driver import EXECUTORS, execute, plan, threads_per_worker
from lrlab.sweep.study import Cell, Study, load_study
from lrlab.sweep.summary import Summary, summarize

__all__ = ["EXECUTORS", "Cell", "Study", "Summary", "execute", "load_study", "plan", "summarize", "threads_per_worker"]
