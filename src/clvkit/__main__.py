"""``python -m clvkit``: the same command line as the installed ``clvkit`` script."""

from clvkit.cli.main import run

run()
