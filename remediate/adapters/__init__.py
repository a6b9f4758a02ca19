"""Real adapters of the ports (:mod:`remediate.ports`)."""
