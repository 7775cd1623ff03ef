"""regions providers for disaster recovery."""
