from blase_tui.cli.app import run

run()
