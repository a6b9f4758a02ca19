"""In-memory fakes of Active Directory and Exchange, on virtual time, with fault injection.

They implement the ports of :mod:`remediate.ports` as the real adapters do, so one contract
suite runs on both, and plans are rehearsed on them.
"""

from .catalog import FakeCatalog
from .directory import Arrival, FakeDirectory
from .exchange import Delivery, FakeExchange, FakeMailbox, FakeServer, FakeStore, HeldMail
from .exports import DirectorySink, MailSink, MemorySink
from .faults import Faults, SimulatedCrash
from .replica import DcView
from .world import FakeWorld
from .worldfile import FORMAT, load_world, save_world, world_from_json, world_to_json

__all__ = [
    "FORMAT",
    "Arrival",
    "DcView",
    "Delivery",
    "DirectorySink",
    "FakeCatalog",
    "FakeDirectory",
    "FakeExchange",
    "FakeMailbox",
    "FakeServer",
    "FakeStore",
    "FakeWorld",
    "Faults",
    "HeldMail",
    "MailSink",
    "MemorySink",
    "SimulatedCrash",
    "load_world",
    "save_world",
    "world_from_json",
    "world_to_json",
]
