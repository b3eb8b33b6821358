"""Request bodies of ``/invocations``: MLflow's four JSON formats and CSV, turned into the model's input as the
deployment's signature describes it, or a :class:`PayloadError` naming the problem (and the HTTP status).

JSON (one of these keys, plus optional ``"params": {"probabilities": true}``)::

    {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}
    {"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}
    {"instances": [[1, 2], [3, 4]]}          (or a list of {"a": 1, "b": 2} records)
    {"inputs": [[1, 2], [3, 4]]}             (or {"a": [1, 3], "b": [2, 4]})

CSV (``Content-Type: text/csv``): a header line of column names, then one line per record; without a header
line (a first line of numbers) every line is a record, its values in the model's column order.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class PayloadError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Parsed:
    """What a request asks: either named columns (``columns`` and ``rows``, or ``frame``) or ``tensor`` rows."""

    columns: list[str] | None = None
    rows: list[Any] | None = None  # list of row lists, with columns
    frame: Any = None  # a pandas DataFrame (CSV)
    tensor: list[Any] | None = None  # list of instances without names
    probabilities: bool = False


def flag(value: Any, where: str) -> bool:
    """``probabilities`` as asked in the query (``?probabilities=true``) or in ``params``: true/false, 1/0,
    yes/no; anything else is a 400 rather than a silent no."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise PayloadError(400, f"{where} must be true or false, not {value!r}.")


def _loads(body: bytes) -> Any:
    """The JSON body; bare ``NaN``, ``Infinity`` and ``-Infinity`` (which MLflow's own client writes for a
    table with gaps) are read as the float values, as ``mlflow models serve`` reads them."""
    import json

    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is in the serve extra
        return json.loads(body)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        if b"NaN" not in body and b"Infinity" not in body:
            raise
        return json.loads(body)  # the standard library reads those tokens (slower: only for such bodies)


def parse(body: bytes, content_type: str, *, probabilities: bool = False) -> Parsed:
    """Parse a request body (any format) into :class:`Parsed`."""
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        return _csv(body, probabilities)
    if kind not in ("application/json", "", "*/*"):
        raise PayloadError(415, f"Content-Type {kind!r} is not supported; send application/json (one of"
                                f" {', '.join(FORMATS)}) or text/csv.")
    try:
        data = _loads(body)
    except ValueError as exc:
        raise PayloadError(400, f"the body is not valid JSON ({exc}); send one of {', '.join(FORMATS)}.") from None
    if not isinstance(data, dict):
        kind = "null" if data is None else f"a {type(data).__name__}"
        raise PayloadError(400, f"the JSON body must be an object with one of the keys {', '.join(FORMATS)},"
                                f" not {kind}.")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise PayloadError(400, "`params` must be an object, such as {\"probabilities\": true}.")
    probabilities = probabilities or flag(params.get("probabilities", False), "params.probabilities")
    given = [k for k in FORMATS if k in data]
    unknown = [k for k in data if k not in FORMATS and k != "params"]
    if len(given) != 1:
        what = f"unknown key(s) {', '.join(unknown)}" if unknown and not given else (
            f"both {' and '.join(given)}" if given else "no input")
        raise PayloadError(400, f"the body has {what}; give exactly one of {', '.join(FORMATS)}.")
    key = given[0]
    value = data[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise PayloadError(400, "dataframe_split must be an object with `data` (a list of rows) and `columns`.")
        rows = value["data"]
        if not isinstance(rows, list):
            raise PayloadError(400, "dataframe_split.data must be a list of rows.")
        columns = value.get("columns")
        if columns is None:
            return Parsed(tensor=rows, probabilities=probabilities)
        if not isinstance(columns, list) or not all(isinstance(c, str | int) for c in columns):
            raise PayloadError(400, "dataframe_split.columns must be a list of column names.")
        return Parsed(columns=[str(c) for c in columns], rows=rows, probabilities=probabilities)
    if key == "dataframe_records":
        return _records(value, "dataframe_records", probabilities)
    if key == "instances":
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return _records(value, "instances", probabilities)
        if not isinstance(value, list):
            raise PayloadError(400, "instances must be a list (of rows, or of records).")
        return Parsed(tensor=value, probabilities=probabilities)
    # inputs
    if isinstance(value, dict):
        columns = [str(c) for c in value]
        lists = list(value.values())
        if not all(isinstance(v, list) for v in lists):
            raise PayloadError(400, "inputs as an object must map each column to a list of values.")
        lengths = {len(v) for v in lists}
        if len(lengths) > 1:
            raise PayloadError(400, f"inputs: the columns have different lengths ({sorted(lengths)}).")
        return Parsed(columns=columns, rows=[list(r) for r in zip(*lists, strict=True)], probabilities=probabilities)
    if not isinstance(value, list):
        raise PayloadError(400, "inputs must be a list of rows or an object of columns.")
    return Parsed(tensor=value, probabilities=probabilities)


def _records(value: Any, key: str, probabilities: bool) -> Parsed:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise PayloadError(400, f"{key} must be a list of records ({{\"column\": value, ...}}).")
    columns: list[str] = []
    seen: set[str] = set()
    for record in value:
        for c in record:
            if c not in seen:
                seen.add(c)
                columns.append(str(c))
    rows = [[record.get(c) for c in columns] for record in value]
    return Parsed(columns=columns, rows=rows, probabilities=probabilities)


def _csv(body: bytes, probabilities: bool) -> Parsed:
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(400, f"the CSV body cannot be read ({str(exc).splitlines()[0]}); send a header line"
                                " of column names, then one line per record.") from None
    columns = [str(c) for c in frame.columns]
    if columns and all(_number(c) for c in columns):
        # no header line: the first line is a record, not names (a model's columns are never all numbers)
        frame = pd.read_csv(io.BytesIO(body), header=None)
        return Parsed(tensor=frame.to_numpy().tolist(), probabilities=probabilities)
    return Parsed(columns=columns, frame=frame, probabilities=probabilities)


# ------------------------------------------------------------------------------------ to the model's input
def to_input(parsed: Parsed, signature: dict[str, Any], *, max_rows: int) -> tuple[Any, int]:
    """The model's input (a DataFrame for named columns, an ndarray for a tensor) and its number of records."""
    spec = signature.get("inputs") or {}
    n = _count(parsed)
    if n == 0:
        raise PayloadError(422, "the request holds no records; send at least one.")
    if n > max_rows:
        raise PayloadError(422, f"the request holds {n} records, more than the {max_rows} this server takes at once"
                                " (--max-rows); split it.")
    if spec.get("kind") == "columns":
        return _columns(parsed, spec, n), n
    return _tensor(parsed, spec, n), n


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _count(parsed: Parsed) -> int:
    if parsed.frame is not None:
        return len(parsed.frame)
    if parsed.rows is not None:
        return len(parsed.rows)
    return len(parsed.tensor or [])


_SPECS: dict[int, tuple[dict[str, Any], list[str], dict[str, str], bool]] = {}


def _spec_columns(spec: dict[str, Any]) -> tuple[list[str], dict[str, str], bool]:
    """The signature's column names in order, their dtypes, and whether all are numeric: worked out once per
    signature (a server asks for them on every request)."""
    known = _SPECS.get(id(spec))
    if known is None or known[0] is not spec:
        names = [c["name"] for c in spec["columns"]]
        dtypes = {c["name"]: c.get("dtype") or "float64" for c in spec["columns"]}
        known = _SPECS[id(spec)] = (spec, names, dtypes, all(_kind(dtypes[n]) in "fiub" for n in names))
    return known[1], known[2], known[3]


def _columns(parsed: Parsed, spec: dict[str, Any], n: int) -> Any:
    """Named columns in the model's order: a float64 array when every column is numeric (the fast path: one
    ``np.asarray``), else a DataFrame. A value that is not a number is named, with its column and record."""
    import pandas as pd

    names, dtypes, numeric = _spec_columns(spec)
    if parsed.columns is None:  # rows without names: they must be in the model's column order
        rows = parsed.tensor or []
        bad = next((i for i, r in enumerate(rows) if not isinstance(r, list) or len(r) != len(names)), None)
        if bad is not None:
            got = len(rows[bad]) if isinstance(rows[bad], list) else "not a list"
            raise PayloadError(422, f"record {bad} has {got} values; the model takes {len(names)} columns"
                                    f" ({', '.join(names)}): send them in that order, or by name.")
        columns, data = names, rows
    else:
        columns = parsed.columns
        given = set(columns) if columns != names else None  # (the usual request names them in the model's order)
        missing = [c for c in names if c not in given] if given is not None else []
        extra = [c for c in columns if c not in dtypes] if given is not None else []
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing column(s) {', '.join(missing)}")
            if extra:
                parts.append(f"unknown column(s) {', '.join(extra)}")
            raise PayloadError(422, f"{' and '.join(parts)}; the model takes {', '.join(names)}.")
        data = parsed.rows
    if parsed.frame is not None:
        frame = parsed.frame[names]
    else:
        width = len(columns)
        bad = next((i for i, r in enumerate(data) if not isinstance(r, list) or len(r) != width), None)
        if bad is not None:
            raise PayloadError(422, f"record {bad} does not have one value per column ({width} columns).")
        if columns != names:
            order = [columns.index(name) for name in names]
            data = [[r[i] for i in order] for r in data]
        if numeric:
            try:
                array = np.asarray(data, dtype=np.float64)
                if array.shape == (n, len(names)):
                    return array
            except (ValueError, TypeError):
                pass
        frame = pd.DataFrame(data, columns=names)
    out = {}
    for name in names:
        column = frame[name]
        if _kind(dtypes[name]) in "fiub":
            values = pd.to_numeric(column, errors="coerce")
            bad_rows = np.flatnonzero(values.isna().to_numpy() & column.notna().to_numpy())
            if len(bad_rows):
                raise PayloadError(422, f"column {name}: {column.iloc[bad_rows[0]]!r} in record {bad_rows[0]} is not a"
                                        f" number (the model takes {dtypes[name]}).")
            out[name] = values.astype("float64")
        else:
            out[name] = column
    if numeric:
        return np.column_stack([out[name].to_numpy() for name in names]) if names else np.empty((n, 0))
    return pd.DataFrame(out, columns=names)


def _kind(dtype: str) -> str:
    return "O" if dtype in ("object", "str", "string") else np.dtype(dtype).kind


def _tensor(parsed: Parsed, spec: dict[str, Any], n: int) -> np.ndarray:
    if parsed.columns is not None:
        # named values for a model that takes one array per record: that array's name (the card's input
        # column), or one name per value of the flattened record; other names are a mistake, not ignored
        column, size = spec.get("column"), int(np.prod(spec["shape"])) if spec.get("shape") else None
        one = len(parsed.columns) == 1 and (column is None or parsed.columns[0] == column)
        if not one and len(parsed.columns) != size:
            takes = f"one input `{column}`" if column else "one input"
            raise PayloadError(422, f"the records name the columns {', '.join(parsed.columns[:5])}"
                                    f"{', ...' if len(parsed.columns) > 5 else ''}; the model takes {takes} of the"
                                    f" shape {spec.get('shape')} ({spec.get('dtype', 'float32')}) per record.")
        if parsed.frame is not None:
            rows = parsed.frame.to_numpy().tolist()
        else:
            rows = parsed.rows
    else:
        rows = parsed.tensor
    try:
        array = np.asarray(rows, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        text = str(exc).splitlines()[0]
        if "inhomogeneous" in text or "sequence" in text:
            raise PayloadError(422, "the records do not all have the same shape; every record must have the"
                                    f" shape {spec.get('shape')}.") from None
        raise PayloadError(422, f"the records hold values that are not numbers ({text}).") from None
    shape = spec.get("shape")
    if shape is not None:
        want = tuple(int(s) for s in shape)
        got = tuple(array.shape[1:])
        if got != want:
            if int(np.prod(got)) == int(np.prod(want)) and array.ndim >= 1:
                array = array.reshape((n, *want))  # flat rows of a dataframe: the same values, reshaped
            else:
                raise PayloadError(422, f"each record has the shape {list(got)}; the model takes {list(want)}"
                                        f" ({spec.get('dtype', 'float32')}).")
    dtype = np.dtype(spec.get("dtype") or "float32")
    if dtype.kind == "f" and np.abs(array).max(initial=0) > np.finfo(dtype).max:
        raise PayloadError(422, f"the model takes {dtype} values (at most {np.finfo(dtype).max:.3g} in size); the"
                                " records hold larger ones.")
    if dtype.kind in "iu":
        if np.isnan(array).any():
            raise PayloadError(422, f"the records hold missing values (null or NaN); the model takes {dtype} values"
                                    " only: fill them before sending.")
        info = np.iinfo(dtype)
        if (array != np.round(array)).any() or array.min() < info.min or array.max() > info.max:
            raise PayloadError(422, f"the model takes {dtype} values (whole numbers from {info.min} to {info.max});"
                                    " the records hold others.")
    return array.astype(dtype, copy=False)


def first_missing(x: Any, columns: list[str] | None) -> tuple[str, int, str] | None:
    """``(column, record, what)`` of the first value in the model's input ``x`` that is missing (null or NaN)
    or infinite, None when it holds none; a column of an array without names is named by its position."""
    if hasattr(x, "isna"):  # a DataFrame
        numeric = x.select_dtypes("number")
        holes = x.isna().to_numpy()
        if numeric.shape[1]:
            infinite = np.zeros(holes.shape, dtype=bool)
            positions = [x.columns.get_loc(c) for c in numeric.columns]
            infinite[:, positions] = np.isinf(numeric.to_numpy(dtype=np.float64))
            holes = holes | infinite
        values = x.to_numpy()
    else:
        values = np.asarray(x)
        if values.dtype.kind not in "fc":
            return None
        holes = ~np.isfinite(values)
    if not holes.any():
        return None
    holes = holes.reshape(len(holes), -1)
    record, position = (int(i) for i in np.argwhere(holes)[0])
    name = columns[position] if columns is not None and position < len(columns) else f"value {position}"
    value = values.reshape(len(values), -1)[record, position]
    what = "an infinite value" if isinstance(value, float | np.floating) and np.isinf(value) else \
        "a missing value (null or NaN)"
    return name, record, what


def missing_refused(where: tuple[str, int, str], model: str) -> PayloadError:
    """The 422 for a missing or infinite value the model does not take."""
    column, record, what = where
    kind = "infinite values" if what.startswith("an infinite") else "missing values"
    return PayloadError(422, f"column {column}: record {record} holds {what}, and {model} does not take {kind};"
                             " fill them before sending (or deploy a model that takes them, such as a"
                             " HistGradientBoosting one or a pipeline with an imputer).")
