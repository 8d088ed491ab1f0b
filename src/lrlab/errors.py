"""The one error type for bad user input (a spec, file, config or flag).

Every package raises :class:`InputError` (a ``ValueError``) for input a person got wrong; the CLI turns it into
one line on stderr and exit code 2, without a traceback. Programming errors stay ordinary exceptions.

A library function names its own parameter (``InputError("must be > 0, got 0", param="peak")`` reads
``peak: must be > 0, got 0``), never a command-line flag: the CLI maps the parameter to its flag
(:meth:`InputError.renamed`), so the same check serves the Python API and the command line.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input. The message is one line that names what is wrong and where.

    ``param``, when given, is the name of the library parameter the message is about; ``str()`` then reads
    ``"param: message"``.
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        self.message = message
        self.param = param
        super().__init__(f"{param}: {message}" if param else message)

    def renamed(self, name: str) -> InputError:
        """The same error about ``name`` (e.g. the CLI flag ``--peak-lr``) instead of the parameter."""
        return InputError(self.message, name)


def clip(text: object, width: int = 240) -> str:
    """``repr``-free short form of user text for an error line: one line (breaks become spaces), at most
    ``width`` characters."""
    s = " ".join(str(text).splitlines())
    return s if len(s) <= width else s[: width - 3] + "..."


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
