"""The one error a user can fix: ``UserError``.  This module imports nothing, so every layer can raise it.

``UserError`` is bad input: a wrong option, a folder that is not what it should be, a missing key.  Its
message is one line that names the parameter and says what to do
(``--model runs/x is not a GliZNet folder: pass the --out folder of `gliznet train```).  The CLI prints it
as that one line with exit code 2 (``gliznet.cli.clear_errors``); anything else is a bug or a failure of
the machine (CUDA out of memory, a dead server) and keeps its traceback.

Raise it where the input is checked (an option, a config dataclass's ``__post_init__``, a file the user
gave), never for an internal invariant: those stay ``ValueError`` and keep their traceback.  It is a
``ValueError``, so a library caller's ``except ValueError`` keeps catching bad input.
"""


class UserError(ValueError):
    """Bad input, in one line that names the parameter and the fix."""
