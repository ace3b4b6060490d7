"""Prompt templates live in ``prompts/`` as Jinja2 files, never as Python strings.

A prompt id ``X`` is the pair ``prompts/X.j2`` (the user message) and ``prompts/<family>_system.j2``
(the system message; family = the id's first word). Its *hash* is the SHA-256 of both template
sources, so any edit to a prompt shows up in every record's provenance and in the manifest.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

PROMPTS_DIR = Path(os.environ.get("GLIZNET_PROMPTS_DIR", Path(__file__).resolve().parent.parent / "prompts"))


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
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
        return (env.from_string(self.system_source).render(**params).strip(),
                env.from_string(self.user_source).render(**params).strip())


@lru_cache(maxsize=None)
def load_prompt(prompt_id: str) -> PromptTemplate:
    user = PROMPTS_DIR / f"{prompt_id}.j2"
    system = PROMPTS_DIR / f"{prompt_id.split('_')[0]}_system.j2"
    if not user.exists() or not system.exists():
        known = sorted(p.stem for p in PROMPTS_DIR.glob("*.j2") if not p.stem.endswith("_system"))
        raise ValueError(f"--prompt '{prompt_id}' not found in {PROMPTS_DIR}: use one of {', '.join(known)}")
    return PromptTemplate(prompt_id, system.read_text(encoding="utf-8"), user.read_text(encoding="utf-8"))
