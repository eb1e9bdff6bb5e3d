"""Errors raised at the boundary, where user input enters the program.

Every message says what was expected, what was found, and how to fix it.
"""


class FramingInputError(ValueError):
    """Bad user input: a data file, a config, a model folder or a text."""


class ModelFolderError(FramingInputError):
    """A model folder is missing, incomplete, or not one this package wrote."""
