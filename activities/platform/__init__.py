"""Platforms: where instances of a version run."""
