"""Example playbooks for remediate (see docs/PLAYBOOKS.md)."""
