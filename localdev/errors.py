"""The error type of the local development tools."""


class ServiceError(Exception):
    """A failure that the user can act on; main() prints it without a traceback."""
