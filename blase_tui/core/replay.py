"""``python -m blase_tui.core.replay SPEC``: start one recorded ``blase step`` execution again with exactly its
recorded params (``SPEC`` is the JSON of its ``command.json``). ``blase runs reproduce`` runs it in the
reproduction's folder; it exits like ``blase step``."""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    from blase_tui.core import script_step
    from blase_tui.core.engine import StepRequest, run_step
    from blase_tui.core.project import Project
    from blase_tui.errors import BlaseError

    script_step.disable()
    spec = json.loads(argv[0])
    try:
        project = Project.discover()
        outcome = run_step(project, StepRequest(
            step=spec["step"], params=spec.get("params") or {}, start_run=bool(spec.get("start_run")),
            end_run=bool(spec.get("end_run")), run_name=spec.get("run_name"), force=True,
        ))
    except BlaseError as exc:
        print(f"blase: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"blase: {outcome.message}", file=sys.stderr)
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
