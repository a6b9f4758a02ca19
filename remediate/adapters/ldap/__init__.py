"""The ``Directory`` port on Active Directory (or a Samba AD DC) through ldap3."""

from .connection import ConnectionSettings, TlsMode, open_connection
from .directory import LdapDirectory

__all__ = ["ConnectionSettings", "LdapDirectory", "TlsMode", "open_connection"]
