"""The ``blase`` pyfunc flavour: a blase model version as an MLflow model that ``mlflow.pyfunc.load_model``
loads and that predicts as ``blase_tui.models.load(...).predict`` does (any framework blase trains)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np


class BlaseModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        from blase_tui.plugin import LoadedModel, open_model

        info = json.loads(Path(context.artifacts["info"]).read_text())
        path = Path(context.artifacts["model"])
        adapter = open_model(path, info["framework"], path.name)
        self.model = LoadedModel(info["name"], info["version"], info["framework"], info.get("card") or {}, adapter)

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201 (MLflow reads type hints as a signature)
        if self.model.framework != "sklearn":
            model_input = np.asarray(model_input, dtype=np.float32)
        return self.model.predict(model_input)
