"""blase-fits: ``Extract().load_fits(path, window=...)`` reads FITS images and mosaics (seed 004), whole or as
cutouts, streamed within the memory budget; and a TUI preview of ``.fits`` artifacts."""

__version__ = "0.1.0"
