"""Error types. Every user-facing error says what is wrong, where, and how to fix it."""

from __future__ import annotations


class ClvkitError(Exception):
    """Base class of all clvkit errors."""


class UserInputError(ClvkitError):
    """Bad input or configuration: the CLI exits with code 2."""


class ConfigError(UserInputError):
    """A configuration file or override is invalid."""


class DataValidationError(UserInputError):
    """Transactions failed validation under an ``error`` policy."""


class NotFittedError(ClvkitError, ValueError):
    """An estimator was used before ``fit``."""


class FeatureMismatchError(UserInputError):
    """Columns at predict time differ from those seen at fit time."""


class ConvergenceError(UserInputError):
    """A model's likelihood optimisation failed to converge (the fix is a config change: exit code 2)."""


class IncompatibleModelError(UserInputError):
    """A saved model cannot be loaded under the installed versions."""
