"""The engine's core: contracts, configuration, Temporal connection and logging."""
