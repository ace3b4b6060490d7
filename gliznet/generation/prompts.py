"""Prompt templates live in ``prompts/`` as Jinja2 files, never as Python strings.

A prompt id ``X`` is the pair ``prompts/X.j2`` (the user message) and ``prompts/<family>_system.j2``
(the system message; family = the id's first word). Its *hash* is the SHA-256 of both template
sources, so any edit to a prompt shows up in every record's provenance and in the manifest.

``prompts/`` is installed as the package ``gliznet.templates`` and read with ``importlib.resources``,
so an editable install, ``pip install .`` and a wheel find the same files; ``GLIZNET_PROMPTS_DIR``
points at another folder of templates instead.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import jinja2

from gliznet.errors import UserError

PROMPTS_DIR: Traversable = (Path(os.environ["GLIZNET_PROMPTS_DIR"]) if os.environ.get("GLIZNET_PROMPTS_DIR")
                            else resources.files("gliznet.templates"))


@dataclass(frozen=True)
class PromptTemplate:
    prompt_id: str
    system_source: str
    user_source: str

    @property
    def hash(self) -> str:
        digest = hashlib.sha256((self.system_source + "\x00" + self.user_source).encode("utf-8"))
        return digest.hexdigest()[:16]

    def render(self, **params) -> tuple[str, str]:
        return (_compiled(self.system_source).render(**params).strip(),
                _compiled(self.user_source).render(**params).strip())


@lru_cache(maxsize=64)
def _compiled(source: str) -> jinja2.Template:
    """A template source compiled once (every call and every validated answer renders its prompt)."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    return env.from_string(source)


@lru_cache(maxsize=None)
def load_prompt(prompt_id: str) -> PromptTemplate:
    user = PROMPTS_DIR / f"{prompt_id}.j2"
    system = PROMPTS_DIR / f"{prompt_id.split('_')[0]}_system.j2"
    if not user.is_file() or not system.is_file():
        known = sorted(p.name.removesuffix(".j2") for p in PROMPTS_DIR.iterdir()
                       if p.name.endswith(".j2") and not p.name.endswith("_system.j2"))
        raise UserError(f"--prompt '{prompt_id}' not found in {PROMPTS_DIR}: use one of {', '.join(known)}")
    return PromptTemplate(prompt_id, system.read_text(encoding="utf-8"), user.read_text(encoding="utf-8"))
