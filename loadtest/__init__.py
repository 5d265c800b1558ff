"""Load scenarios against a running TritonTube stack (``make load``, ``python -m loadtest``)."""
