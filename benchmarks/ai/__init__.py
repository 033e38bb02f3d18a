"""The AI benchmarks (``python -m benchmarks.ai`` runs them all, small):

- ``calls``: what flowloom adds around a whole provider call, concurrency, the rate limiter;
- ``ttft``: time to first token through ``ai.llm`` against the bare SDK, per provider;
- ``fanout``: pieces per second a run streams with ten SSE clients following it, against none.
"""
