"""`python -m lastgood` is the `lastgood` command."""

from lastgood.bootstrap import main

main()
