"""Exchange over WinRM (pywinrm): a script runner and the ``Exchange`` port on top of it."""

from .config import ServerConfig, load_exchange_servers
from .exchange import BATCH_SIZE, WinRmExchange
from .runner import ScriptRunner

__all__ = ["BATCH_SIZE", "ScriptRunner", "ServerConfig", "WinRmExchange", "load_exchange_servers"]
