"""Real adapters of the ports (:mod:`remediate.ports`): ``ldap`` (Active Directory over
ldap3) and ``winrm`` (Exchange over WinRM); ``world`` combines them."""
