"""Generation's entry point: ``generate_hardset(config, out, build)`` asks the LLM, then curates its answers into
the dataset folder.  ``gliznet generate`` runs it; the Prefect flow ``generate-hardset`` runs the same two steps as
tasks.

    open_provider(config)                the provider, made and checked once (the CLI's and the flow's)
    generate_calls(...)                  the resumable, checkpointed loop (gliznet.generation.loop)
    ask_false_negatives(...)             --negative-check llm's second pass, while the provider is open
    build_from_checkpoint(...)           validate -> dedup -> split -> hardness -> folder (gliznet.curation.hardset)

Settings come from ``GenerateConfig`` (what the LLM is asked) and ``BuildConfig`` (how the answers become a
folder); ``configs_from_dict`` splits one flat mapping (``gliznet generate --config FILE``) into the two.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import Callable, Iterator

from gliznet._io import Checkpoint, FolderLock, disk_errors
from gliznet._process import Interrupted
from gliznet._timings import StageTimer
from gliznet.curation.hardset import BuildConfig, ask_false_negatives, build_from_checkpoint, check_writable
from gliznet.errors import UserError
from gliznet.generation.folder_plan import claim_plan
from gliznet.generation.loop import ProgressFn, generate_calls, usage_of
from gliznet.generation.plan import GenerateConfig
from gliznet.llm.provider import LLMProvider


def configs_from_dict(data: dict, where: str = "generate config") -> tuple[GenerateConfig, BuildConfig]:
    """A flat mapping of ``GenerateConfig`` and ``BuildConfig`` fields (``{"records": 200, "negative_check":
    "embed"}``) as the two configs; an unknown key is one clear error naming ``where`` it came from."""
    generate_keys = {f.name for f in fields(GenerateConfig)}
    build_keys = {f.name for f in fields(BuildConfig)}
    unknown = sorted(set(data) - generate_keys - build_keys)
    if unknown:
        raise UserError(f"{where} key(s) {', '.join(map(repr, unknown))} unknown: use fields of "
                        "GenerateConfig (records, provider, model, ...) or BuildConfig (negative_check, ...)")
    build = {key: value for key, value in data.items() if key in build_keys}
    if isinstance(build.get("price_per_mtok"), list):  # JSON / YAML have no tuples
        build["price_per_mtok"] = tuple(build["price_per_mtok"])
    return (GenerateConfig(**{key: value for key, value in data.items() if key in generate_keys}),
            BuildConfig(**build))


@contextmanager
def open_provider(config: GenerateConfig, factory: Callable[[], LLMProvider] | None = None) -> Iterator[LLMProvider]:
    """The run's provider (``factory()``, default ``make_provider`` from ``config``), checked before any call and
    closed (an embedded server stopped) on the way out: the one place generation makes its LLM."""
    if factory is None:
        from gliznet.llm.registry import make_provider

        def factory() -> LLMProvider:
            return make_provider(config.provider, config.model, base_url=config.base_url,
                                 concurrency=config.concurrency)

    with factory() as provider:
        provider.check()  # bad provider settings fail before anything is written
        yield provider


def generate_hardset(config: GenerateConfig, out_dir: str | os.PathLike, build: BuildConfig | None = None, *,
                     progress: ProgressFn | None = None, provider_factory: Callable | None = None,
                     **options) -> dict:
    """The main job: generate (resumable) then build the dataset folder. Returns the manifest.

    ``provider_factory()`` gives the provider (default: ``make_provider`` from ``config``; ``open_provider``);
    ``options``: fields of ``BuildConfig`` over ``build``.  The run holds the folder (``FolderLock``: a
    second run on it fails at once, before any LLM is started) and a full disk or a refused write is one
    ``UserError`` line.  The folder keeps one plan (``gliznet.generation.folder_plan.claim_plan``).  An
    interruption (``gliznet._process.Interrupted``) unwinds through the provider (its server is stopped) and the
    lock, counting the calls this run answered and kept."""
    build = replace(build or BuildConfig(), **options)
    out = Path(out_dir)
    timer = StageTimer()
    check_writable(out)
    made: list[dict] = []  # the checkpoint lines this run wrote (generation, then the negative check)
    with FolderLock(out), disk_errors(out):  # first: a refused run starts nothing
        runs = claim_plan(out, config)
        try:
            with open_provider(config, provider_factory) as provider:
                with timer.stage("calls"):
                    run = generate_calls(config, Checkpoint(out / "checkpoint" / "calls.jsonl"), provider=provider,
                                         progress=progress)
                made = run.made
                if build.negative_check == "llm":
                    with timer.stage("negative_check_calls"):
                        made += ask_false_negatives(out, run.lines.values(), config, build, provider)
            usage = usage_of(made)
            del run  # the build reads the checkpoint again: the answers need not stay in memory twice
            return build_from_checkpoint(out, config, build, usage=usage, timer=timer, runs=runs)
        except Interrupted as stop:  # the lines written so far are kept; the loop that stopped counts its own
            stop.kept = len(made) + (stop.kept or 0)
            raise
