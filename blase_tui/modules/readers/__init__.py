"""The readers behind ``Extract``, one file per format.

=============  ========================================================================================
file           reads
=============  ========================================================================================
images.py      PNG/JPEG, one record per file (``image``, ``label`` from the folder)
audio.py       PCM WAV, one record per file (``audio``, ``sample_rate``)
jsonl.py       JSON lines, one record per line, as Arrow tables
json.py        JSON: an array of objects streamed element by element (or one object), as Arrow tables
csv.py         CSV, as Arrow tables in blocks
parquet.py     Parquet, a row group at a time, columns and filters pushed down
npy.py         ``.npy``, memory-mapped
common.py      the file search, one-line errors, and the record loop the per-record readers share
=============  ========================================================================================
"""
