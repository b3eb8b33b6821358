from blase_tui.cli.hot import run

run()
