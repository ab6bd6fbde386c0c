from motionctl.cli import run

run()
