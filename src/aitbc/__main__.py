"""`python -m aitbc`: the same as the `aitbc` command."""

from aitbc.cli.main import main

main()
