"""After fitting: evaluate → model card → exporters → report (``pipeline.finalize``).

``evaluate``: the chosen checkpoint on val and test, calibration on val. ``card``: the model card.
``exporters``: one function per artefact, run in ``export.exporters`` order. ``results``: report/,
metrics.json and the closing message. ``context``: what the steps share.
"""

from desktop_trainer.finalize.context import stacked, stratified
from desktop_trainer.finalize.pipeline import finalize

__all__ = ["finalize", "stacked", "stratified"]
