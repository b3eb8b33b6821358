"""blase-mlflow: `blase mlflow export` (blase runs and model versions into an MLflow tracking server or store)
and `blase mlflow import` (MLflow runs into blase)."""

__version__ = "0.1.0"
