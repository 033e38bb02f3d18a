"""``python -m flowloom.cli``: the ``flowloom`` command."""

from flowloom.cli.entry import main

main()
