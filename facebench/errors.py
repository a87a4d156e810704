"""Errors that are the user's to fix, shown as one line without a traceback."""


class UserError(Exception):
    """A problem with the user's input (arguments, config, data): exit status 2."""
