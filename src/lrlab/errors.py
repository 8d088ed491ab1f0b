"""The one error type for bad user input (a spec, file, config or flag).

Every package raises :class:`InputError` (a ``ValueError``) for input a person got wrong; the CLI turns it into
one line on stderr and exit code 2, without a traceback. Programming errors stay ordinary exceptions.
"""


class InputError(ValueError):
    """Bad user input. The message is one line that names what is wrong and where."""
