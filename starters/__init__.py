"""Command-line starters: deploy, control a running release."""
