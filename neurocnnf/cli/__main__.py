"""``python -m neurocnnf.cli``: the command line."""

from neurocnnf.cli import main

main()
