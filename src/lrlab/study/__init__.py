"""The study, lrlab's main job: pilot runs on a small share of the budget, measured and fitted, to a recommended
warmup, optimizer, batch size, peak LR and schedule for the full run, with its predicted loss curve.

    from lrlab.store import Store
    from lrlab.study import Executor, load_spec, run_study
    spec = load_spec("examples/demo.toml")
    with Store("runs.db") as store:
        result = run_study(spec, store, Executor("local", workers=2), verify_run=True)
    result.config          # the recommended TrainConfig (``lrlab study`` writes it as TOML)

See docs/study.md for each step, the rules it decides by, and what was measured.
"""

from lrlab.study.run import StudyResult, run_study
from lrlab.study.runs import Executor
from lrlab.study.spec import StudySpec, load_spec

__all__ = ["Executor", "StudyResult", "StudySpec", "load_spec", "run_study"]
