"""database providers for disaster recovery."""
