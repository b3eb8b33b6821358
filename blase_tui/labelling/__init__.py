"""Active learning: the label store, query strategies, the queue, and the UI-free labelling session.

>>> from blase_tui.labelling import LabellingSession, training_set, record_training_ids

Importing this package reads no data and imports neither pyarrow nor a model framework; those load when used.
"""

from __future__ import annotations

from blase_tui.labelling.config import LabellingConfig
from blase_tui.labelling.queue import Queue, QueueItem, build_queue
from blase_tui.labelling.session import LabellingSession, Record
from blase_tui.labelling.targets import TrainingSet, label_batches, record_training_ids, training_set

__all__ = ["LabellingConfig", "LabellingSession", "Queue", "QueueItem", "Record", "TrainingSet", "build_queue",
           "label_batches", "record_training_ids", "training_set"]
