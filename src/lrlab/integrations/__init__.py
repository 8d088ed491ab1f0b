"""lrlab where people already train: probes, records and lrlab schedules in other training loops.

Nothing in lrlab imports this package, and its framework modules import their framework only when imported:

- :mod:`lrlab.integrations.hf`: :class:`~lrlab.integrations.hf.HFProbeCallback` for the Hugging Face Trainer
  (``pip install 'lrlab[hf]'``);
- :mod:`lrlab.integrations.lightning`: :class:`~lrlab.integrations.lightning.LightningProbeCallback` and
  :func:`~lrlab.integrations.lightning.configure_optimizers` for PyTorch Lightning (``pip install
  'lrlab[lightning]'``);
- here, for any loop: :func:`optimizer_and_schedule` (an lrlab optimizer with a ``ScheduleLR``),
  :class:`ProbeRecorder` (probes and a run's rows into ``metrics.jsonl`` or the run store) and
  :func:`write_curve` (a recorded run as the files ``lrlab fit`` reads).

See docs/integrations.md for the recipes, what each records and what the callbacks cost.
"""

from lrlab.integrations.curve import write_curve
from lrlab.integrations.optimizers import optimizer_and_schedule
from lrlab.integrations.recorder import SUPPORTED, ProbeRecorder

__all__ = ["SUPPORTED", "ProbeRecorder", "optimizer_and_schedule", "write_curve"]
