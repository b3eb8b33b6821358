"""blase-dask: ``blase step S --executor dask`` runs the step's data work on Dask workers."""

__version__ = "0.1.0"
