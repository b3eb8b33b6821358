"""A conversation with the assistant: the OpenAI chat-completions protocol with tool calls (OpenAI, Ollama,
llama.cpp's server, vLLM and LM Studio all serve it), through the ``openai`` SDK, imported only here.

The autonomy level decides what happens when the model asks for an action (``run_step``, ``run_pipeline``):

- ``manual``: nothing runs; the model is told so, with the exact command, to propose to the user;
- ``semi``: the exact command is shown and runs only after the user answers y;
- ``auto``: it runs within the limits of ``[agent]``: ``allowed_steps`` (default: none), ``max_runs`` (default
  3) and ``time_budget`` (seconds, default 3600); anything else is refused, and told to the model.

Each conversation is recorded as a run of the project (tag ``agent``): the endpoint and model as params, the
count of tool calls and actions as metrics, and the whole conversation, every tool call with its arguments and
answer, as the artifact ``conversation.json``. The API key is read from the environment variable ``[agent]
api_key_env`` names and is never written anywhere.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from blase_tui.agent.tools import Toolbox
from blase_tui.core.project import Project
from blase_tui.errors import BlaseError, ConfigError

SYSTEM = (
    "You are blase's assistant for one machine-learning project. Answer from the tools' results, never from"
    " memory: call tools to read runs, metrics, logs and the pipeline's status before answering. Name runs by"
    " their id. To run a step or the pipeline, call run_step or run_pipeline; the user's autonomy level decides"
    " whether it runs. Be brief."
)
DEFAULT_BASE_URL = "http://localhost:11434/v1"  # Ollama's OpenAI-compatible endpoint
MAX_TURNS = 12


class EndpointDown(BlaseError):
    """The endpoint does not answer (down, slow, refusing the key)."""


class Session:
    def __init__(self, project: Project, *, autonomy: str | None = None, confirm: Callable[[str], bool] | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        settings = dict(project.config.agent)
        self.project = project
        self.autonomy = autonomy or settings.get("autonomy", "manual")
        if self.autonomy not in ("manual", "semi", "auto"):
            raise ConfigError(f"autonomy must be manual, semi or auto, not {self.autonomy!r}.")
        self.base_url = str(settings.get("base_url", DEFAULT_BASE_URL))
        self.model = str(settings.get("model", "llama3.1"))
        self.timeout = float(settings.get("timeout", 60))
        self.allowed_steps = list(settings.get("allowed_steps", []))
        self.max_runs = int(settings.get("max_runs", 3))
        self.time_budget = float(settings.get("time_budget", 3600))
        self.key_env = settings.get("api_key_env")
        self.confirm = confirm or (lambda _command: False)
        self.say = say or (lambda _text: None)
        self.toolbox = Toolbox(project)
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
        self.calls: list[dict[str, Any]] = []  # every tool call: name, arguments, what happened, the answer
        self.actions_run = 0
        self.started = time.monotonic()
        self._client: Any = None

    # ------------------------------------------------------------------------------------------ the endpoint
    def client(self) -> Any:
        if self._client is None:
            try:
                import openai
            except ImportError:
                raise ConfigError("blase agent needs the openai package: pip install 'blase-tui[agent]' (or use"
                                  " `blase agent --offline`).") from None
            key = os.environ.get(self.key_env, "") if self.key_env else ""
            if self.key_env and not key:
                raise ConfigError(f"[agent] api_key_env names {self.key_env}, which is not set in this environment;"
                                  f" export it (export {self.key_env}=...) or use a local endpoint.")
            self._client = openai.OpenAI(base_url=self.base_url, api_key=key or "not-needed", timeout=self.timeout,
                                         max_retries=0)
        return self._client

    def _complete(self) -> Any:
        import openai

        try:
            return self.client().chat.completions.create(
                model=self.model, messages=self.messages, tools=[t.schema() for t in self.toolbox.tools.values()])
        except openai.APITimeoutError:
            raise EndpointDown(f"the agent's endpoint {self.base_url} did not answer within {self.timeout:g} s;"
                               " raise [agent] timeout or check the server.") from None
        except openai.APIConnectionError:
            raise EndpointDown(f"the agent's endpoint {self.base_url} does not answer; start it (`ollama serve`)"
                               " or set [agent] base_url in blase.toml.") from None
        except openai.APIStatusError as exc:
            raise EndpointDown(f"the agent's endpoint {self.base_url} refused the request (HTTP {exc.status_code}:"
                               f" {str(exc.message).splitlines()[0][:200]}); check [agent] model and the key.") from None

    # ------------------------------------------------------------------------------------------ the loop
    def ask(self, question: str) -> str:
        """The assistant's answer to ``question``, after whatever tool calls it made."""
        self.messages.append({"role": "user", "content": question})
        for _ in range(MAX_TURNS):
            message = self._complete().choices[0].message
            calls = list(message.tool_calls or [])
            self.messages.append({"role": "assistant", "content": message.content or "",
                                  **({"tool_calls": [c.model_dump() for c in calls]} if calls else {})})
            if not calls:
                return str(message.content or "").strip()
            for call in calls:
                answer = self._tool(call.function.name, call.function.arguments)
                self.messages.append({"role": "tool", "tool_call_id": call.id, "content": answer})
        return "(the assistant made more tool calls than one answer may; ask again, more narrowly)"

    def _tool(self, name: str, arguments: str) -> str:
        entry: dict[str, Any] = {"tool": name, "arguments": arguments}
        self.calls.append(entry)
        try:
            tool, args = self.toolbox.parse(name, arguments)
        except BlaseError as exc:
            entry.update(outcome="refused", answer=str(exc))
            return str(exc)
        if tool.action:
            command = " ".join(self.toolbox.command(tool, args))
            entry["command"] = command
            refusal = self._refusal(tool, args, command)
            if refusal is not None:
                entry.update(outcome="not run", answer=refusal)
                self.say(f"[{self.autonomy}] not run: {command}")
                return refusal
            self.say(f"[{self.autonomy}] running: {command}")
            self.actions_run += 1
        answer = self.toolbox.call(tool, args)
        entry.update(outcome="ran", answer=answer)
        return answer

    def _refusal(self, tool: Any, args: Any, command: str) -> str | None:
        """Why an action does not run at this autonomy level, or None when it runs."""
        if self.autonomy == "manual":
            return (f"Not run: the autonomy level is manual, so nothing runs. Propose the command to the user:"
                    f" {command}")
        if self.autonomy == "semi":
            return None if self.confirm(command) else f"Not run: the user declined `{command}`."
        allowed = getattr(args, "step", None) if tool.allow_name == "" else tool.allow_name
        if allowed not in self.allowed_steps:
            what = f"the step {allowed}" if tool.allow_name == "" else f"`{tool.allow_name}` actions"
            return (f"Refused: autonomy auto may run only what [agent] allowed_steps lists"
                    f" ({', '.join(self.allowed_steps) or 'nothing'}), not {what}.")
        if self.actions_run >= self.max_runs:
            return f"Refused: autonomy auto has run its {self.max_runs} actions ([agent] max_runs)."
        if time.monotonic() - self.started > self.time_budget:
            return f"Refused: the conversation's time budget ([agent] time_budget = {self.time_budget:g} s) is spent."
        return None

    # ------------------------------------------------------------------------------------------ records
    def record(self) -> str | None:
        """The conversation as a run of the project; its id (None when nothing was asked)."""
        if len(self.messages) < 2:
            return None
        from blase_tui.modules.track import Track

        track = Track(self.project.root)
        track.start_run(name="agent", tags={"agent": self.autonomy})
        try:
            track.log_params({"agent.base_url": self.base_url, "agent.model": self.model,
                              "agent.autonomy": self.autonomy})
            track.log_metrics({"agent.tool_calls": float(len(self.calls)), "agent.actions": float(self.actions_run)})
            with tempfile.TemporaryDirectory(prefix="blase-agent-") as tmp:
                path = Path(tmp) / "conversation.json"
                path.write_text(json.dumps({"messages": self.messages, "tool_calls": self.calls}, indent=1,
                                           default=str))
                track.log_artifact(path)
            return track.run_id
        finally:
            track.end_run()
