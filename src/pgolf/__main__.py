"""`python -m pgolf` is the `pgolf` command."""

from pgolf.cli.app import main

main()
