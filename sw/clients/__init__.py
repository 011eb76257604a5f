"""The load-generating client programs (the paper's closed-loop HTTP clients).

:mod:`.http` holds :class:`~.http.HttpClient`, a process on a client machine whose operating
system (BSD kernel, socket layer, TCP and Ethernet driver) is :mod:`.bsd`'s; :mod:`.testserver`
a minimal HTTP server on the library OS (for tests and smoke runs, not one of the paper's
servers).
"""
from .http import ClientStats, HttpClient, RequestRecord

__all__ = ["HttpClient", "RequestRecord", "ClientStats"]
