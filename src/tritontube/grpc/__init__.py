"""The gRPC transport of the public API (``proto/web.proto``, served by ``tritontube grpc``).

``servicer.py`` adapts each RPC to the same use cases the REST handlers call (parse, call,
serialise; ``messages.py`` builds the responses), ``interceptors.py`` checks bearer tokens,
applies the rate limits and turns problems into status codes with ``google.rpc.Status``
details (``errors.py``), and ``server.py`` runs it all with standard health checking and server
reflection.
"""
