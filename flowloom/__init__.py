"""flowloom: draw a graph of AI steps, run it, and read every run back, node by node."""

__version__ = "0.1.0"
