"""`blase agent`: the assistant (docs/agent.md): a conversation in the terminal, `blase agent ask "..."` for one
answer, `--offline` for rule-based recommendations without a model."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from blase_tui.cli import common

app = typer.Typer(help="An assistant that reads the project's runs and drives its steps, with you in control.",
                  invoke_without_command=True)

Offline = Annotated[bool, typer.Option("--offline", help="Rule-based recommendations from the project's records;"
                                                          " no model asked.")]
Autonomy = Annotated[str | None, typer.Option("--autonomy", help="manual (runs nothing), semi (asks before every"
                                                                 " action) or auto (within the limits of \\[agent]);"
                                                                 " default: \\[agent] autonomy, else manual.")]


def _offline(project: object, why: str | None = None) -> None:
    from blase_tui.agent.offline import recommendations

    if why:
        common.err_console.print(f"blase: {why} Recommendations from the records instead:", markup=False,
                                 soft_wrap=True)
    found = recommendations(project)  # type: ignore[arg-type]
    for line in found or ["Nothing calls for attention: no failed step, no overfitting, no unanswered drift,"
                          " and the pipeline is up to date."]:
        print(f"- {line}")


def _confirm(command: str) -> bool:
    if not sys.stdin.isatty():
        answer = sys.stdin.readline()
    else:
        answer = input(f"run `{command}`? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _session(autonomy: str | None):  # type: ignore[no-untyped-def]
    from blase_tui.agent.session import Session

    def say(text: str) -> None:
        common.err_console.print(text, markup=False, soft_wrap=True)

    return Session(common.project(), autonomy=autonomy, confirm=_confirm, say=say)


def _answer(session, question: str) -> bool:  # type: ignore[no-untyped-def]
    """Print the answer; False when the endpoint is down (the offline recommendations were printed instead)."""
    from blase_tui.agent.session import EndpointDown

    try:
        print(session.ask(question))
    except EndpointDown as exc:
        _offline(session.project, str(exc))
        return False
    return True


@app.callback()
def chat(ctx: typer.Context, offline: Offline = False, autonomy: Autonomy = None) -> None:
    """A conversation: type a question, an empty line or Ctrl-D ends it. The conversation is recorded as a run."""
    if ctx.invoked_subcommand is not None:
        return
    if offline:
        _offline(common.project())
        return
    session = _session(autonomy)
    common.err_console.print(f"blase agent [{session.autonomy}] {session.model} at {session.base_url}; an empty line"
                             " ends.", markup=False, soft_wrap=True)
    try:
        while True:
            try:
                question = input(f"[{session.autonomy}] > ")
            except EOFError:
                break
            if not question.strip() or not _answer(session, question):
                break
    finally:
        run_id = session.record()
        if run_id:
            common.err_console.print(f"blase: the conversation is run {run_id}.", markup=False)


@app.command("ask")
def ask(question: Annotated[str, typer.Argument(help="The question.")], offline: Offline = False,
        autonomy: Autonomy = None) -> None:
    """One question, one answer (for scripts). With semi autonomy, an action waits for y on stdin."""
    if offline:
        _offline(common.project())
        return
    session = _session(autonomy)
    try:
        ok = _answer(session, question)
    finally:
        run_id = session.record()
    if run_id:
        common.err_console.print(f"blase: the conversation is run {run_id} ([{session.autonomy}]).", markup=False)
    if not ok:
        raise typer.Exit(1)
