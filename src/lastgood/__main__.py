"""`python -m lastgood` is the `lastgood` command."""

from lastgood.cli.main import main

main()
