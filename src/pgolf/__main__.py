"""`python -m pgolf` is the `pgolf` command."""

from pgolf.cli.entry import main

main()
