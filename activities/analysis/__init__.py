"""Metrics providers and the provider-agnostic analysis judge."""
