"""A WS-Management (WinRS) endpoint on loopback that unmodified pywinrm talks to as it would to
Windows: HTTP Basic, NTLM with MS-WSMV message encryption, HTTPS with a test CA. Commands go to a
``Host`` callback (see ``shells.py``); ``exchange_host.py`` is the one that runs our Exchange
scripts against the in-memory fake."""

from .server import Endpoint, EndpointOptions

__all__ = ["Endpoint", "EndpointOptions"]
