"""The API's routes, one module per resource.

Their annotations are evaluated as each module is defined (no ``from __future__ import
annotations``, unlike the rest of flowloom): FastAPI reads a route's signature twice as the app
is built, evaluating each string annotation every time (some 40 ms of a server's start over the
routes). ``flowloom.api.deps`` does the same for the dependencies every route shares."""
