"""Exceptions that the CLI turns into exit statuses: InputError means bad input or config (exit 2)."""


class InputError(Exception):
    """Bad input data or configuration: the CLI prints one line and exits 2, having written nothing."""


class ConfigError(InputError):
    """An unknown key, a wrong type or an out-of-range value in the configuration."""
