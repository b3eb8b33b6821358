"""``python -m blase_tui.core.hooks PROJECT RUN``: the ``run_closed`` hooks of the project's enabled plugins
(``core/plugins.py``), run after the run closed, in this process of their own. A hook that fails is one line
here (appended to ``.blase/plugins.log``); the run is not touched."""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    from blase_tui.core import plugins
    from blase_tui.core.config import load_config

    root, run_id = Path(argv[0]), argv[1]
    config = load_config(root)
    enabled = plugins.enabled(config.plugins)
    failed = 0
    for plugin in plugins.installed("run_closed"):
        if plugin.name not in enabled:
            continue
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            hook = plugins.load("run_closed", plugin.name, what=f"the {plugin.name} plugin's run_closed hook")
            said = hook(root, run_id, plugins.settings(config.plugins, plugin.name))
            if said:
                print(f"{stamp} {plugin.name}: run {run_id}: {said}", flush=True)
        except Exception as exc:  # one line, whatever the plugin raised
            failed += 1
            print(f"{stamp} {plugin.name}: run {run_id}: {plugins.first_line(exc)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
