"""Errors the user can fix; the command line prints them as one line and exits non-zero."""


class NasError(Exception):
    """Base of every error caused by input: its message is complete and fit to print."""


class ConfigError(NasError, ValueError):
    """An invalid network config, design space or budget; the message names the field."""
