"""Steps, one module per domain: ad, replication, exchange, mail, services."""
