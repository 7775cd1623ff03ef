"""What the engine refuses before any side effect.

Starters exit 2 on :class:`InputError`; workflows never see one (a request is resolved and
checked before a workflow starts).
"""

from __future__ import annotations


class InputError(ValueError):
    """A request or configuration the engine refuses before any side effect."""


class ConfigError(InputError):
    """deploy-code.yaml is invalid."""


class BadRequest(Exception):
    """A call to a provider or client can never succeed as asked; retrying will not help.

    Activities turn it into a non-retryable ``ApplicationError(type="BadRequest")``; any
    other exception is treated as transient and retried.
    """
