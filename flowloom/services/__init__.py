"""The domain rules behind the API's routes, each change checked and written in one transaction.

A route parses the request, calls a service and turns what it answers into the response; the
rule itself (what may change, what must exist, what a change also writes) lives here, where the
CLI or an embedding program finds it too. Services use storage, billing and the engine below
them and know nothing of HTTP: they take plain values and raise :mod:`flowloom.exceptions`.
"""
