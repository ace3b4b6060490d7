"""The one error a user can fix: ``UserError``.  This module imports nothing, so every layer can raise it.

``UserError`` is bad input: a wrong option, a folder that is not what it should be, a missing key.  Its
message is one line that names the parameter and says what to do
(``--model runs/x is not a GliZNet folder: pass the --out folder of `gliznet train```).  The CLI prints it
as that one line with exit code 2 (``gliznet.cli.clear_errors``); anything else is a bug or a failure of
the machine (CUDA out of memory, a dead server) and keeps its traceback.

It is a ``ValueError``, so the library's older input checks (``raise ValueError("--x must be ...")``) and
the code that catches them keep working while they move to it.
"""


class UserError(ValueError):
    """Bad input, in one line that names the parameter and the fix."""
