"""``python -m neurocnnf``: the command line."""

from neurocnnf.cli import main

main()
