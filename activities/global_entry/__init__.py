"""global_entry providers for disaster recovery."""
