"""`blase inspect PATH`: Examine's summary and schema suggestion of a dataset file or folder, without a project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from blase_tui.cli import common


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect_command)


def inspect_command(
    path: Annotated[str, typer.Argument(help="A dataset file (.csv, .tsv, .parquet, .jsonl, .json, .npy) or a folder"
                                             " of them, of images or of WAV files; or a URL (s3://, gs://, https://).")],
    label: Annotated[str | None, typer.Option("--label", help="The label column, when its name does not say so.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write the JSON (default:"
                                                                 " inspect/NAME.json in the working directory).")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the JSON instead of the tables.")] = False,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Also write a histogram PNG per numeric"
                                                                    " column beside the JSON.")] = False,
) -> None:
    """Stream a dataset through Examine (memory-sized batches, whatever its size): every column's statistics,
    the suggestions (feature types, label candidates, imputation, outliers) and the suggested schema, printed
    and written as JSON. Bad records are skipped and counted, as in a step."""
    from blase_tui.errors import ConfigError
    from blase_tui.modules.examine import Examine, inspect_report
    from blase_tui.modules.extract import Extract, reader_for
    from blase_tui.modules.readers.common import DataError

    extract = Extract()
    try:
        reader = reader_for(path)
    except DataError as exc:  # the argument names nothing blase reads: a usage error (exit 2)
        raise ConfigError(str(exc)) from None
    examiner = Examine(label_column=label)
    for batch in extract.load(path):
        examiner.process_batch(batch)
    report = inspect_report(examiner, path, reader, bad_records=len(extract.bad_records))
    report["bad_record_list"] = [{"source": b.source, "record": b.record, "reason": b.reason}
                                 for b in extract.bad_records[:100]]
    from blase_tui.store.remote import is_url

    name = path.rstrip("/").rsplit("/", 1)[-1] if is_url(path) else Path(path).resolve().name
    target = out or Path("inspect") / f"{name or 'data'}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2, default=float))
    if plots:
        from blase_tui.modules.examine import write_plots

        write_plots(report["summary"], target.parent)
    if json_:
        common.print_json(report)
        return
    from blase_tui.modules.examine import print_schema, print_summary

    print_summary(report["summary"])
    print_schema(report["schema"])
    n = report["bad_records"]
    first = extract.bad_records[0] if extract.bad_records else None
    bad = (f"; {n} bad record{'s' if n != 1 else ''} skipped (first: {first.source} {first.record}: {first.reason};"
           " all of them in the JSON)") if first is not None else ""
    common.console.print(f"written to {target}{bad}", markup=False, highlight=False)
