"""``blase_tui.main()``: the seed's ``python main.py --step NAME [--start_run] [--end_run]`` form."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from blase_tui.core import steps as steps_mod
from blase_tui.errors import EXIT_INTERRUPTED, BlaseError


def main(
    steps: dict[str, Callable[..., Any]] | list[Callable[..., Any]] | None = None,
    argv: list[str] | None = None,
) -> NoReturn:
    """Run one step of the project this script belongs to, exactly as ``blase step`` would.

    Put ``if __name__ == "__main__": main()`` at the end of ``main.py``; steps are the functions marked
    ``@step``, or the functions passed as ``steps`` (a list, or a dict of name to function)::

        python main.py --step etl --start_run
        python main.py --step train
        python main.py --step evaluate --end_run
    """
    from blase_tui.core import script_step
    from blase_tui.core.engine import StepRequest, run_step
    from blase_tui.core.project import Project

    script_step.disable()  # the engine runs the step here; the script is not a step of its own

    if steps is not None:
        steps_mod.register_functions(steps)
    known = steps_mod.registered()
    parser = argparse.ArgumentParser(description="Run one step of this blase project, tracked.")
    parser.add_argument("--step", required=True, choices=sorted(known) or None, help="the step to run")
    parser.add_argument("--start_run", "--start-run", action="store_true", help="open a run that later steps join")
    parser.add_argument("--end_run", "--end-run", action="store_true", help="close the open run after this step")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a param")
    parser.add_argument("--force", action="store_true", help="run even if an identical execution can be reused")
    parser.add_argument("--resume", action="store_true", help="continue training from the last checkpoint")
    parser.add_argument("--resume_any", "--resume-any", action="store_true",
                        help="resume even from a checkpoint made with other params, with the checkpoint's params")
    args = parser.parse_args(argv)

    script = getattr(sys.modules.get("__main__"), "__file__", None)
    start = Path(script).resolve().parent if script else Path.cwd()
    try:
        project = Project.discover(start)
        # a script other than the entry module (python mon.py --step monitor) is the step's code too: kept with
        # the run and part of the step's code hash
        own = Path(script).resolve() if script else None
        if own is not None and (not own.is_relative_to(project.root) or own == project.root / project.config.entry):
            own = None
        outcome = run_step(
            project,
            StepRequest(step=args.step, start_run=args.start_run, end_run=args.end_run,
                        overrides=args.set, force=args.force, resume=args.resume,
                        resume_any=args.resume_any, script=own),
            steps=known,
        )
    except BlaseError as exc:
        print(f"blase: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    print(f"blase: {outcome.message}", file=sys.stderr)
    sys.exit(outcome.exit_code)
