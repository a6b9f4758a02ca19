"""What each operation's script takes: the contract between the adapter (exchange.py), the
scripts (whatever the Exchange version) and the test endpoint that decodes them."""

from __future__ import annotations

from .assembly import Parameter

_GUIDS = Parameter("guids", is_list=True)
# The store each mailbox was seen in, by position (a GUID is not unique on a server): the store's
# DN on 2007+, "<storage group>\<store>" (Exchange_Mailbox's keys) on 2003; "" where not known.
_STORES = Parameter("stores", is_list=True)

PARAMETERS: dict[str, tuple[Parameter, ...]] = {
    "describe": (),
    "mailboxes": (Parameter("scope"), _GUIDS),
    "service_states": (Parameter("names", is_list=True),),
    "running_dependents": (Parameter("names", is_list=True),),
    "set_services": (Parameter("names", is_list=True), Parameter("state")),
    "clean_database": (Parameter("store_dns", is_list=True),),
    "purge": (_GUIDS, _STORES),
    # users: objectGUIDs (targets, and the 2003 strip's ADSI search); user_dns: their DNs as
    # the adapter read them (ports.ExchangeCatalog), which the 2007+ cmdlets take as -Identity.
    "disable": (Parameter("users", is_list=True), Parameter("user_dns", is_list=True)),
    # kinds: Connect-Mailbox's parameter set per pair (user, shared, room, equipment); archives:
    # "1" where the user's archive is connected too (-Archive). Exchange 2003 ignores both.
    # logons: each user's sAMAccountName (Exchange_Mailbox.Reconnect on 2003); user_dns: as above.
    "reconnect": (
        Parameter("mailboxes", is_list=True),
        Parameter("users", is_list=True),
        Parameter("kinds", is_list=True),
        Parameter("archives", is_list=True),
        _STORES,
        Parameter("logons", is_list=True),
        Parameter("user_dns", is_list=True),
    ),
    "validate_reconnect": (Parameter("mailboxes", is_list=True), _STORES),
    "update_recipients": (Parameter("users", is_list=True), Parameter("user_dns", is_list=True)),
    "exports": (Parameter("directory"), _GUIDS),
    "exmerge_prerequisites": (Parameter("directory"),),
    "export": (Parameter("directory"), _GUIDS, Parameter("wait_s"), _STORES),
    "import": (
        Parameter("directory"),
        Parameter("wait_s"),
        Parameter("mailboxes", is_list=True),
        Parameter("export_servers", is_list=True),
        Parameter("export_mailboxes", is_list=True),
        Parameter("locations", is_list=True),
        _STORES,
    ),
}
