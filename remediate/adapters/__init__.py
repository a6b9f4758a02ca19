"""Adapters of the ports to real servers (``winrm``: Exchange over WinRM)."""
