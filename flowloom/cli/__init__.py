"""The ``flowloom`` command line: Typer wiring in main.py, the work in plain functions beside it."""
