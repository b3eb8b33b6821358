"""blase agent (issue 29) against an OpenAI-compatible server started here on a loopback port, with scripted
answers: it asks for tools by the names the request offers, then answers from the tool results. The autonomy
levels decide what runs; the conversation is a run; without an endpoint, the offline recommendations."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import _env, free_port, make_project, runs_json
from test_labelling import al  # noqa: F401  (the labelling project fixture)

Script = Callable[[dict[str, Any]], dict[str, Any]]


class FakeModel:
    """``POST /v1/chat/completions`` answered by ``script(request) -> message``; every request kept."""

    def __init__(self, script: Script) -> None:
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                message = script(body)
                reply = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                    "choices": [{"index": 0, "message": message,
                                                 "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}]
                                    }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": "call_1", "type": "function",
                            "function": {"name": name, "arguments": json.dumps(arguments)}}]}


def tool_results(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def offered(request: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in request.get("tools", [])}


def uses(name: str, arguments: dict[str, Any]) -> Script:
    """A model that calls ``name`` (when the request offers it) and then answers with the tool's result."""
    def script(request: dict[str, Any]) -> dict[str, Any]:
        results = tool_results(request)
        if not results:
            assert name in offered(request), offered(request)
            return call(name, arguments)
        return {"role": "assistant", "content": f"RESULT {results[-1]}"}
    return script


@pytest.fixture
def model_server():
    servers: list[FakeModel] = []

    def start(script: Script) -> FakeModel:
        servers.append(FakeModel(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def project_with_agent(tmp_path: Path, port: int, extra: str = "") -> Path:
    from conftest import STEPS_MAIN

    return make_project(tmp_path / "p", main_src=STEPS_MAIN, toml=textwrap.dedent(f'''
        [project]
        name = "p"

        [agent]
        base_url = "http://127.0.0.1:{port}/v1"
        model = "scripted"
        timeout = 20
        {extra}
    '''))


def agent(root: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blase_tui", "agent", *args], cwd=root, env=_env(), input=stdin,
                          capture_output=True, text=True, timeout=180)


def test_the_best_run_by_a_metric_is_answered_with_its_id(tmp_path: Path, model_server, blase) -> None:
    server = model_server(uses("best_run", {"metric": "loss", "mode": "min", "step": "a"}))
    root = project_with_agent(tmp_path, server.port)
    for n in (2, 5, 3):
        blase("step", "a", "--set", f"n={n}", cwd=root, check=True)
    best = blase("runs", "find", "--step", "a", "--param", "n=5", cwd=root, check=True).stdout.strip()
    proc = agent(root, "ask", "Which run of a has the lowest loss?")
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert answer["run_id"] == best and answer["loss"] == pytest.approx(0.2)
    # the request offered every tool with a schema, and the conversation is a run with the tool call in it
    assert {"best_run", "show_run", "step_log", "run_step"} <= offered(server.requests[0])
    conversation = [r for r in runs_json(blase, root) if r["name"] == "agent"]
    assert len(conversation) == 1
    shown = json.loads(blase("runs", "show", conversation[0]["id"], "--json", cwd=root, check=True).stdout)
    folder = Path(blase("runs", "find", "--name", "agent", "--path", "--latest", cwd=root, check=True).stdout.strip())
    kept = json.loads(next(folder.rglob("conversation.json")).read_text())
    assert kept["tool_calls"][0]["tool"] == "best_run" and best in kept["tool_calls"][0]["answer"]
    assert shown["params"]["agent.model"] == "scripted"


@pytest.mark.parametrize("autonomy, stdin, runs", [("semi", "y\n", True), ("semi", "n\n", False),
                                                    ("manual", "y\n", False)])
def test_an_action_runs_only_as_the_autonomy_level_allows(tmp_path: Path, model_server, blase, autonomy: str,
                                                          stdin: str, runs: bool) -> None:
    server = model_server(uses("run_step", {"step": "a", "params": {"n": 4}}))
    root = project_with_agent(tmp_path, server.port)
    proc = agent(root, "ask", "train it with n=4", "--autonomy", autonomy, stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    executed = [r for r in runs_json(blase, root) if "a" in [s["step"] for s in r["steps"]]]
    assert bool(executed) is runs
    said = tool_results(server.requests[-1])[-1]
    if runs:
        assert json.loads(said)["exit_code"] == 0
        assert show_param(blase, root, executed[0]["id"]) == 4
    elif autonomy == "manual":
        assert said == "Not run: the autonomy level is manual, so nothing runs. Propose the command to the user:" \
                       " blase step a --set n=4"
    else:
        assert said == "Not run: the user declined `blase step a --set n=4`."
    assert f"[{autonomy}]" in proc.stderr


def show_param(blase, root: Path, run_id: str) -> Any:
    return json.loads(blase("runs", "show", run_id, "--json", cwd=root, check=True).stdout)["steps"][0]["params"]["n"]


def test_auto_runs_only_the_allowed_steps(tmp_path: Path, model_server, blase) -> None:
    server = model_server(uses("run_step", {"step": "a"}))
    root = project_with_agent(tmp_path, server.port, 'autonomy = "auto"\nallowed_steps = ["b"]\n')
    proc = agent(root, "ask", "run a")
    assert proc.returncode == 0, proc.stderr
    assert tool_results(server.requests[-1])[-1] == ("Refused: autonomy auto may run only what [agent]"
                                                     " allowed_steps lists (b), not the step a.")
    assert not [r for r in runs_json(blase, root) if r["name"] != "agent"]
    server2 = model_server(uses("run_step", {"step": "b"}))
    (root / "blase.toml").write_text((root / "blase.toml").read_text().replace(str(server.port), str(server2.port)))
    assert agent(root, "ask", "run b").returncode == 0
    assert [s["step"] for r in runs_json(blase, root) for s in r["steps"]].count("b") == 1


@pytest.mark.parametrize("arguments, expected", [
    ({"step": "nope"}, "the project has no step 'nope'; its steps are"),
    ({"step": "a", "params": {"n; rm -rf /": 1}}, "is not a param name"),
    ({"step": "a", "extra": 1}, "the arguments of run_step are not valid"),
])
def test_bad_tool_arguments_go_back_to_the_model_and_nothing_runs(tmp_path: Path, model_server, blase,
                                                                  arguments: dict[str, Any], expected: str) -> None:
    server = model_server(uses("run_step", arguments))
    root = project_with_agent(tmp_path, server.port, 'autonomy = "auto"\nallowed_steps = ["a"]\n')
    assert agent(root, "ask", "go").returncode == 0
    assert expected in tool_results(server.requests[-1])[-1]
    assert not [r for r in runs_json(blase, root) if r["name"] != "agent"]


def test_an_endpoint_that_does_not_answer_is_one_line_and_the_offline_advice(tmp_path: Path) -> None:
    root = project_with_agent(tmp_path, free_port())
    proc = agent(root, "ask", "anything")
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0].startswith("blase: the agent's endpoint http://127.0.0.1:")
    assert "does not answer; start it (`ollama serve`) or set [agent] base_url" in proc.stderr
    assert "Traceback" not in proc.stderr and "`blase run` would run" in proc.stdout


def test_a_key_in_blase_toml_is_refused(tmp_path: Path) -> None:
    root = project_with_agent(tmp_path, 1, 'api_key_env = "sk-abc123"\n')
    proc = agent(root, "ask", "x")
    assert proc.returncode == 2 and "looks like a key; name the environment variable" in proc.stderr


OVERFIT = '''
from blase_tui import step

@step
def train(ctx, curve: str = "down"):
    values = [1.0, 0.8, 0.7, 0.75, 0.8, 0.9] if curve == "up" else [1.0, 0.8, 0.7, 0.6, 0.55, 0.5]
    for epoch, v in enumerate(values):
        ctx.log_metric("val_loss", v, iteration=epoch)

@step
def etl(ctx):
    raise RuntimeError("the source folder data/raw is empty")
'''


def test_offline_recommendations_name_overfitting_failures_and_stale_steps(tmp_path: Path, blase) -> None:
    root = make_project(tmp_path / "o", main_src=OVERFIT, toml='[project]\nname = "o"\n')
    blase("step", "train", cwd=root, check=True)
    proc = agent(root, "--offline")
    assert proc.returncode == 0, proc.stderr
    assert "overfits" not in proc.stdout and "etl: never ran" in proc.stdout and "`blase run` would run" in proc.stdout
    blase("step", "train", "--set", "curve=up", cwd=root, check=True)
    blase("step", "etl", cwd=root)
    lines = agent(root, "--offline").stdout.splitlines()
    assert any("step etl failed in its newest run" in line and "the source folder data/raw is empty" in line
               for line in lines)
    assert any("val_loss rose for the last 3 epochs after its lowest, 0.7 at epoch 3: the model overfits" in line
               and "--set epochs=3" in line for line in lines)


def test_a_crafted_run_or_step_in_a_tool_call_reads_nothing_outside_the_project(tmp_path: Path, model_server,
                                                                                 blase) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "log.txt").write_text("TOP SECRET\n")
    server = model_server(uses("step_log", {"run_id": "../../secret", "step": "a"}))
    root = project_with_agent(tmp_path, server.port)
    blase("step", "a", cwd=root, check=True)
    assert agent(root, "ask", "read it").returncode == 0
    said = tool_results(server.requests[-1])[-1]
    assert "TOP SECRET" not in said and "error" in json.loads(said)


def test_a_bad_autonomy_is_one_line(tmp_path: Path) -> None:
    root = project_with_agent(tmp_path, 1)
    proc = agent(root, "ask", "x", "--autonomy", "wild")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "blase: autonomy must be manual, semi or auto, not 'wild'."


async def test_the_tui_assistant_asks_before_it_runs_a_step_in_semi(tmp_path: Path, blase) -> None:
    """The TUI pane: the question, the tool the model called, a y/n dialog for the action (semi), the step run
    through the engine, the answer; leaving the pane records the conversation."""
    from blase_tui.tui.app import make_app
    from blase_tui.tui.screens.assistant import AssistantScreen
    from blase_tui.tui.screens.confirm import ConfirmScreen

    server = FakeModel(uses("run_step", {"step": "b"}))
    try:
        root = project_with_agent(tmp_path, server.port, 'autonomy = "semi"\n')
        app = make_app(root)
        async with app.run_test(size=(100, 30)) as pilot:
            async def until(condition, tries: int = 3000) -> None:
                for _ in range(tries):
                    if condition():
                        return
                    await pilot.pause(0.02)
                raise AssertionError("condition never held")

            await until(lambda: app.screen.__class__.__name__ == "RunsScreen")
            await pilot.press("a")
            await until(lambda: isinstance(app.screen, AssistantScreen))
            assert "Assistant [semi]  scripted at http://127.0.0.1:" in str(
                app.screen.query_one("#assistant-title").render())
            await pilot.press(*"run b", "enter")
            await until(lambda: isinstance(app.screen, ConfirmScreen))
            assert "blase step b" in str(app.screen.query_one("Static").render())
            await pilot.press("y")
            await until(lambda: isinstance(app.screen, AssistantScreen) and not app.screen.busy)
            text = app.screen.query_one("#assistant-log").text
            assert "> run b" in text and "[semi] running: blase step b" in text and '"exit_code": 0' in text
            await pilot.press("escape")
            await until(lambda: not isinstance(app.screen, AssistantScreen))
    finally:
        server.close()
    steps = [s["step"] for r in runs_json(blase, root) for s in r["steps"]]
    assert steps.count("b") == 1
    assert [r["name"] for r in runs_json(blase, root)].count("agent") == 1


DRIFT = '''
import numpy as np
from blase_tui import Monitor, step

@step
def watch(ctx, shift: float = 1.0):
    rng = np.random.default_rng(0)
    m = Monitor(triggers={"features": ["age"]})
    m.load_feature_priors({"format": 1, "kind": "features", "features": {
        "age": {"type": "numeric", "sample": rng.normal(40, 10, 2000).tolist()},
        "income": {"type": "numeric", "sample": rng.normal(5, 1, 2000).tolist()}}})
    import pandas as pd

    live = pd.DataFrame({"age": rng.normal(40 + 10 * shift, 10, 3000), "income": rng.normal(5, 1, 3000)})
    m.detect_feature_drift(live)
    m.submit_live_batch(live)
    m.check_triggers()
'''


def test_reading_tools_answer_from_the_records(tmp_path: Path, model_server, blase) -> None:
    """drift_report, diff_runs and models: what the CLI's --json says, through the tools."""
    asked: list[tuple[str, dict[str, Any]]] = []

    def script(request: dict[str, Any]) -> dict[str, Any]:
        done = len(tool_results(request))
        if done < len(asked):
            return call(*asked[done])
        return {"role": "assistant", "content": "RESULTS " + json.dumps(tool_results(request))}

    server = model_server(script)
    root = make_project(tmp_path / "p", main_src=DRIFT, toml=textwrap.dedent(f'''
        [project]
        name = "p"

        [agent]
        base_url = "http://127.0.0.1:{server.port}/v1"
        model = "scripted"
    '''))
    blase("step", "watch", cwd=root, check=True)
    blase("step", "watch", "--set", "shift=0.0", cwd=root, check=True)
    first = blase("runs", "find", "--step", "watch", "--param", "shift=1.0", cwd=root, check=True).stdout.strip()
    second = blase("runs", "find", "--step", "watch", "--param", "shift=0.0", cwd=root, check=True).stdout.strip()
    asked += [("drift_report", {"run_id": first}), ("diff_runs", {"a": first, "b": second}), ("models", {})]
    proc = agent(root, "ask", "what drifted?")
    assert proc.returncode == 0, proc.stderr
    drift, diff, models = (json.loads(r) for r in json.loads(proc.stdout.split("RESULTS ", 1)[1]))
    assert drift["run_id"] == first and drift["drifted"] == ["age"]
    assert "feature age drifted" in drift["triggers_fired"]
    assert {f["feature"] for f in drift["features"]} >= {"age", "income"}
    assert "shift" in json.dumps(diff) and models == []


def test_an_alias_is_an_action_auto_runs_only_when_listed(tmp_path: Path, model_server) -> None:
    server = model_server(uses("set_alias", {"model": "clf", "version": 1, "alias": "champion"}))
    root = project_with_agent(tmp_path, server.port, 'autonomy = "auto"\nallowed_steps = ["a"]\n')
    assert agent(root, "ask", "promote it").returncode == 0
    assert tool_results(server.requests[-1])[-1] == ("Refused: autonomy auto may run only what [agent] allowed_steps"
                                                     " lists (a), not `alias` actions.")
    (root / "blase.toml").write_text((root / "blase.toml").read_text().replace('["a"]', '["a", "alias"]'))
    assert agent(root, "ask", "promote it").returncode == 0
    said = json.loads(tool_results(server.requests[-1])[-1])
    assert said["exit_code"] == 2 and "clf" in " ".join(said["said"])  # ran: blase says there is no such model


def test_offline_says_a_label_round_is_random_when_the_model_scores_alike(al: Path) -> None:  # noqa: F811
    """The labelling project of tests/test_labelling.py with a scorer that gives every record the same score."""
    from test_labelling import TOML, _fake_model

    from blase_tui.labelling.session import LabellingSession

    (al / "flat_scorer2.py").write_text("import numpy as np\n\ndef load(path):\n"
                                        "    return lambda x: np.tile([0.4, 0.6], (len(x), 1))\n")
    (al / "blase.toml").write_text(TOML.replace('n = 10\n', 'n = 10\nbatch = 7\nmodel = "fake"\n'
                                                'scorer = "flat_scorer2:load"\nseed = 3\n'))
    _fake_model(al)
    with LabellingSession(al, strategy="least_confidence", n=4, labeller="t") as session:
        assert session.round.order.endswith("random order")
    lines = agent(al, "--offline").stdout.splitlines()
    assert any(line.startswith("- label round 1: fake") and "scores every record alike, so the round is a random"
               " draw" in line for line in lines), lines


def test_offline_names_drift_that_nothing_answered(tmp_path: Path, blase) -> None:
    root = make_project(tmp_path / "d", main_src=DRIFT + "\n\n@step\ndef retrain(ctx):\n    pass\n",
                        toml='[project]\nname = "d"\n')
    blase("step", "watch", cwd=root, check=True)
    run_id = blase("runs", "find", "--step", "watch", "--latest", cwd=root, check=True).stdout.strip()
    lines = agent(root, "--offline").stdout.splitlines()
    assert any(f"step watch flagged drift in 1 feature(s) in run {run_id}, and no step has run since" in line
               for line in lines), lines
    blase("step", "retrain", cwd=root, check=True)  # something ran after it: answered
    assert not any("flagged drift" in line for line in agent(root, "--offline").stdout.splitlines())


def test_the_idle_gpu_rule_on_resource_samples() -> None:
    """No GPU here: the rule is tried on samples shaped as ResourceSampler writes them with NVML present
    (blase_tui/core/resources.py): idle for long enough is named, busy, short or GPU-less is not."""
    from blase_tui.agent.offline import IDLE_SAMPLES, gpu_idle

    def samples(util: float, n: int, gpu: bool = True) -> list[dict[str, Any]]:
        return [{"type": "resources", "rss": 1, "cpu": 90.0,
                 "gpu": [{"index": 0, "util": util, "mem_used": 1, "mem_total": 2}] if gpu else None}
                for _ in range(n)]

    assert gpu_idle(samples(2, IDLE_SAMPLES)) == (2.0, IDLE_SAMPLES)
    assert gpu_idle(samples(80, 50)) is None
    assert gpu_idle(samples(0, IDLE_SAMPLES - 1)) is None
    assert gpu_idle(samples(0, 50, gpu=False)) is None


def test_an_agent_starts_a_label_round_for_the_user(al: Path, model_server) -> None:  # noqa: F811
    """start_label_round makes the round (semi: after y) and labels nothing; `blase label` then resumes it."""
    from test_labelling import TOML, _fake_model

    server = model_server(uses("start_label_round", {"strategy": "random", "n": 3}))
    (al / "blase.toml").write_text(TOML + f'\n[agent]\nbase_url = "http://127.0.0.1:{server.port}/v1"\n'
                                          'model = "scripted"\nautonomy = "semi"\n')
    _fake_model(al)
    proc = agent(al, "ask", "start a round", stdin="y\n")
    assert proc.returncode == 0, proc.stderr
    said = json.loads(tool_results(server.requests[-1])[-1])
    assert said["exit_code"] == 0 and any(line.startswith("round 1 started: random") for line in said["output_tail"])
    rounds = json.loads(subprocess.run([sys.executable, "-m", "blase_tui", "label", "rounds", "--json"], cwd=al,
                                       env=_env(), capture_output=True, text=True, timeout=60).stdout)
    assert [(r["number"], r["status"]) for r in rounds] == [(1, "open")] and rounds[0]["done"] == 0
