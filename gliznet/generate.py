"""Generation: ask an LLM for batches of hard records, checkpointing every answer as it arrives.

A run is a sequence of *calls*. Call ``i`` is fully determined by the run seed: its topic, genre,
length, reading level and LLM seed come from ``random.Random(f"{seed}:{i}")``, so the plan never
depends on timing or concurrency. Every finished call, answered or failed, is appended as one JSON
line to ``<out>/checkpoint/calls.jsonl`` (flushed and fsynced). Records are *derived* from that file
by validation, in call order, so a run killed at any moment and started again with the same ``--out``
skips the calls already answered: no accepted record is lost and none is produced twice.

    plan_call(config, i) -> CallSpec          what to ask in call i
    run_call(provider, prompt, spec) -> dict   one checkpoint line (raw answer or failure reason)
    Checkpoint(path)                           append-only call log; tolerates a torn last line
    validate_calls(lines, prompt, limits)      raw answers -> records + counted rejections
    generate_calls(config, checkpoint, ...)    the one loop: a rolling window of calls until enough
                                               records; calls run on a pluggable executor (``submit``)
    usage_of(lines)                            LLM usage summed from checkpoint lines
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Callable, Iterable, Iterator

from gliznet.llm.provider import LLMCallError, LLMConfigError, LLMProvider, Usage
from gliznet.llm.registry import PROVIDERS
from gliznet.prompts import PromptTemplate, load_prompt
from gliznet.records import (
    Limits,
    Provenance,
    Record,
    Rejection,
    RejectReason,
    parse_batch,
)

DATA_DIR: Traversable = resources.files("gliznet.data")  # the repository's data/, installed as package data


@dataclass
class GenerateConfig:
    """Parameters of one generation run (all recorded in the manifest)."""

    records: int = 60
    seed: int = 0
    provider: str = "local"
    model: str | None = None
    records_per_call: int = 4
    concurrency: int = 4
    temperature: float = 0.8
    max_tokens: int = 1500
    max_calls: int | None = None  # default: enough calls for 6x the requested records (small models reject a lot)
    prompt_id: str = "hardset_batch"
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(f"--provider '{self.provider}' is unknown: use one of {', '.join(PROVIDERS)}")
        if self.records < 1:
            raise ValueError(f"--records must be >= 1 (got {self.records}): ask for at least one record")
        if not 1 <= self.records_per_call <= 20:
            raise ValueError(f"--records-per-call must be in 1..20 (got {self.records_per_call})")
        if self.concurrency < 1:
            raise ValueError(f"--concurrency must be >= 1 (got {self.concurrency})")
        if self.max_calls is not None and self.max_calls < 1:
            raise ValueError(f"--max-calls must be >= 1 (got {self.max_calls})")

    @property
    def call_budget(self) -> int:
        if self.max_calls is not None:
            return self.max_calls
        return max(4, -(-6 * self.records // self.records_per_call))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["limits"] = self.limits.model_dump()
        return d


@dataclass(frozen=True)
class BuildConfig:
    """How a run's checkpointed answers become the dataset folder (``gliznet.hardset``).  Kept apart
    from ``GenerateConfig``: no LLM call depends on it, so changing it re-asks nothing (the Prefect
    cache of ``generate-batch`` keys on ``GenerateConfig``)."""

    test_label_fraction: float = 0.2
    near_dup_threshold: float = 90.0
    with_hardness: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.test_label_fraction < 1.0:
            raise ValueError(f"--test-label-fraction must be between 0 and 1 (got {self.test_label_fraction})")
        if not 0.0 < self.near_dup_threshold <= 100.0:
            raise ValueError(f"--near-dup-threshold must be in (0, 100] (got {self.near_dup_threshold})")


@dataclass(frozen=True)
class CallSpec:
    index: int
    seed: int
    domain: str
    topic: str
    genre: str
    length: str
    reading_level: str


# --- what to ask -------------------------------------------------------------------------------

def load_topics(path: Path | Traversable | None = None) -> list[tuple[str, str]]:
    """``(domain, subject)`` pairs from ``data/topics.tsv`` (>= 1,000 subjects)."""
    path = path or DATA_DIR / "topics.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [tuple(line.split("\t", 1)) for line in lines if "\t" in line]  # type: ignore[misc]


def load_styles(path: Path | Traversable | None = None) -> dict[str, list[str]]:
    return json.loads((path or DATA_DIR / "styles.json").read_text(encoding="utf-8"))


_TOPICS: list[tuple[str, str]] | None = None
_STYLES: dict[str, list[str]] | None = None


def plan_call(seed: int, index: int) -> CallSpec:
    """Call ``index`` of a run with ``seed``: independent of every other call and of timing."""
    global _TOPICS, _STYLES
    if _TOPICS is None or _STYLES is None:
        _TOPICS, _STYLES = load_topics(), load_styles()
    rng = random.Random(f"{seed}:{index}")
    domain, topic = rng.choice(_TOPICS)
    return CallSpec(
        index=index,
        seed=rng.randrange(2**31),
        domain=domain,
        topic=topic,
        genre=rng.choice(_STYLES["genres"]),
        length=rng.choice(_STYLES["lengths"]),
        reading_level=rng.choice(_STYLES["reading_levels"]),
    )



# --- one call ----------------------------------------------------------------------------------

def request_schema(limits: Limits, n_records: int, max_text_chars: int = 600, max_label_chars: int = 40) -> dict:
    """The batch schema with this run's bounds, so grammar-constrained decoding (llama.cpp, Ollama)
    keeps answers inside them. Validation still checks everything: not every provider enforces it."""
    label = {"type": "string", "minLength": 2, "maxLength": min(max_label_chars, limits.max_label_chars)}
    item = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": limits.min_text_chars,
                     "maxLength": min(max_text_chars, limits.max_text_chars)},
            "labels": {"type": "array", "items": label, "minItems": limits.min_labels, "maxItems": limits.max_labels},
            "not_labels": {"type": "array", "items": label, "minItems": limits.min_not_labels,
                           "maxItems": limits.max_not_labels},
        },
        "required": ["text", "labels", "not_labels"],
        "additionalProperties": False,
    }
    return {"type": "object",
            "properties": {"records": {"type": "array", "items": item, "minItems": n_records, "maxItems": n_records}},
            "required": ["records"], "additionalProperties": False}


def run_call(provider: LLMProvider, prompt: PromptTemplate, spec: CallSpec, config: GenerateConfig) -> dict:
    """Ask for one batch. Returns the checkpoint line: the raw answer, or the failure reason."""
    limits = config.limits
    system, user = render_call(prompt, spec, config)
    line: dict = {
        "call": spec.index,
        "spec": asdict(spec),
        "provider": provider.name,
        "model": provider.model,
        "prompt_id": prompt.prompt_id,
        "prompt_hash": prompt.hash,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        completion = provider.complete_json(system, user, request_schema(limits, config.records_per_call), seed=spec.seed,
                                            temperature=config.temperature, max_tokens=config.max_tokens)
    except LLMCallError as err:
        line.update(ok=False, error=err.reason, detail=str(err)[:500], attempts=err.attempts,
                    llm_seconds=round(err.seconds, 3))
        return line
    except LLMConfigError:
        raise  # a setting is wrong (e.g. the key was revoked): every further call would fail the same way
    except Exception as err:  # noqa: BLE001 - a provider bug must cost one counted call, not the run
        line.update(ok=False, error="unexpected", detail=f"{type(err).__name__}: {err}"[:500], attempts=None)
        return line
    line.update(ok=True, raw=completion.text, model=completion.model or provider.model,
                prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
                latency_s=round(completion.latency_s, 3), attempts=completion.attempts,
                llm_seconds=round(completion.seconds, 3))
    return line


# --- the checkpoint ----------------------------------------------------------------------------

class Checkpoint:
    """Append-only JSONL log of finished calls.

    Each line is written with one ``write`` + flush + fsync. A process killed mid-write can leave a
    torn last line; ``load`` drops it (and truncates the file to the last complete line) so that
    call is simply asked again.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def entries(self) -> list[dict]:
        """Every complete line, decoded, in file order (a torn last line is cut off the file first)."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        good_end = data.rfind(b"\n") + 1
        if good_end < len(data):  # torn last line: forget it, the call will be asked again
            with open(self.path, "r+b") as fh:
                fh.truncate(good_end)
        entries = []
        for raw in data[:good_end].splitlines():
            try:
                entries.append(json.loads(raw))
            except json.JSONDecodeError:
                continue  # cannot happen with whole-line writes; never fatal
        return entries

    def load(self) -> dict[int, dict]:
        """``{call index: line}``; the first line of a call wins."""
        lines: dict[int, dict] = {}
        for entry in self.entries():
            lines.setdefault(int(entry["call"]), entry)
        return lines

    def append(self, entry: dict) -> None:
        data = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock, open(self.path, "ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


# --- from raw answers to records ---------------------------------------------------------------

@dataclass
class Validated:
    records: list[Record]
    rejections: list[Rejection]
    counts: Counter


def validate_calls(lines: Iterable[dict], prompt_text_for: Callable[[dict], str], limits: Limits) -> Validated:
    """Validate every checkpointed answer, in call order. Failed calls become counted rejections."""
    records: list[Record] = []
    rejections: list[Rejection] = []
    counts: Counter = Counter()
    for line in sorted(lines, key=lambda entry: entry["call"]):
        spec = CallSpec(**line["spec"])
        prov = Provenance(
            provider=line["provider"], model=line["model"], prompt_id=line["prompt_id"],
            prompt_hash=line["prompt_hash"], topic=spec.topic, genre=spec.genre, length=spec.length,
            reading_level=spec.reading_level, seed=spec.seed, created_at=line["created_at"],
        )
        counts["calls"] += 1
        if not line.get("ok"):
            counts["calls_failed"] += 1
            rejections.append(Rejection(reason=RejectReason.llm_call_failed,
                                        detail=f"{line.get('error')}: {line.get('detail', '')}"[:500],
                                        raw="", provenance=prov))
            continue
        kept, rejected, fixes = parse_batch(line["raw"], prov, prompt_text_for(line), limits)
        records.extend(kept)
        rejections.extend(rejected)
        counts.update(fixes)
        counts["prompt_tokens"] += line.get("prompt_tokens") or 0
        counts["completion_tokens"] += line.get("completion_tokens") or 0
    return Validated(records, rejections, counts)


def accepted_in(line: dict, config: GenerateConfig) -> int:
    """How many records of one checkpoint line pass validation (used to decide when to stop)."""
    if not line.get("ok"):
        return 0
    prompt = load_prompt(config.prompt_id)
    blank = Provenance(provider="", model="", prompt_id="", prompt_hash="", topic="", genre="", length="",
                       reading_level="", seed=0, created_at="")
    return len(parse_batch(line["raw"], blank, prompt_text(prompt, line, config), config.limits)[0])


def render_call(prompt: PromptTemplate, spec: CallSpec, config: GenerateConfig) -> tuple[str, str]:
    """(system, user) messages of one call: the template filled with the call's plan and the bounds."""
    limits = config.limits
    return prompt.render(
        n_records=config.records_per_call, topic=spec.topic, domain=spec.domain, genre=spec.genre,
        length=spec.length, reading_level=spec.reading_level, min_labels=limits.min_labels,
        max_labels=limits.max_labels, min_not_labels=limits.min_not_labels, max_not_labels=limits.max_not_labels,
    )


def prompt_text(prompt: PromptTemplate, line: dict, config: GenerateConfig) -> str:
    """The user prompt a checkpoint line was answered from (for prompt-echo detection)."""
    return render_call(prompt, CallSpec(**line["spec"]), config)[1]


# --- the loop ----------------------------------------------------------------------------------

ProgressFn = Callable[[int, int, int], None]  # (accepted, calls_done, call_budget)
Submit = Callable[[CallSpec], Future]  # start one call; the future's result is its checkpoint line


@dataclass
class Generated:
    """What one run of the loop leaves: every checkpoint line, old and new, by call index; and
    ``made``, the lines this run appended, in the order they arrived."""

    lines: dict[int, dict]
    made: list[dict]


@contextmanager
def thread_pool(provider: LLMProvider, config: GenerateConfig) -> Iterator[Submit]:
    """The default executor: ``config.concurrency`` threads, each running ``run_call`` on ``provider``."""
    prompt = load_prompt(config.prompt_id)
    with ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="gliznet-call") as pool:
        yield lambda spec: pool.submit(run_call, provider, prompt, spec, config)


def generate_calls(config: GenerateConfig, checkpoint: Checkpoint, *, provider: LLMProvider | None = None,
                   submit: Submit | None = None, progress: ProgressFn | None = None) -> Generated:
    """The generation loop (the CLI and the Prefect flow both run this one).

    A rolling window: ``config.concurrency`` calls are in flight and a new one starts as soon as one
    finishes, in plan order, skipping calls the checkpoint already holds (resume).  Each answer is
    appended to ``checkpoint`` the moment it arrives.  No call starts once the checkpoint holds
    ``config.records`` accepted records or the call budget is spent; calls in flight still finish.

    Where calls run is ``submit``'s business: ``submit(spec)`` returns a ``concurrent.futures.Future``
    of the call's checkpoint line.  Without it, ``thread_pool(provider, config)``.
    """
    if submit is None:
        if provider is None:
            raise ValueError("generate_calls needs provider= (calls run in a thread pool) or submit= (an executor)")
        with thread_pool(provider, config) as in_threads:
            return generate_calls(config, checkpoint, submit=in_threads, progress=progress)
    report = progress or (lambda accepted, calls, budget: None)
    lines = checkpoint.load()
    made: list[dict] = []
    accepted = sum(accepted_in(line, config) for line in lines.values())
    todo = (i for i in range(config.call_budget) if i not in lines)
    running: set[Future] = set()
    report(accepted, len(lines), config.call_budget)
    while True:
        while accepted < config.records and len(running) < config.concurrency:
            i = next(todo, None)
            if i is None:
                break
            running.add(submit(plan_call(config.seed, i)))
        if not running:
            return Generated(lines, made)
        done, running = wait(running, return_when=FIRST_COMPLETED)
        failures = [future for future in done if future.exception() is not None]
        for future in done:
            if future in failures:
                continue
            line = future.result()
            checkpoint.append(line)  # before anything else: a killed run keeps every answer it saw
            lines[line["call"]] = line
            made.append(line)
            accepted += accepted_in(line, config)
            report(accepted, len(lines), config.call_budget)
        if failures:
            raise failures[0].exception()


def usage_of(lines: Iterable[dict]) -> dict:
    """LLM usage of the calls behind checkpoint ``lines`` (a run's ``Generated.made``): the manifest's
    ``llm_usage``, the same fields as ``Usage``.  A line marked ``cached`` (an orchestrator's result
    cache answered it) cost no LLM call in this run and is not counted."""
    usage = Usage()
    for line in lines:
        if line.get("cached"):
            continue
        usage.calls += 1
        usage.failed_calls += int(not line.get("ok"))
        usage.retries += max(0, (line.get("attempts") or 1) - 1)
        usage.prompt_tokens += line.get("prompt_tokens") or 0
        usage.completion_tokens += line.get("completion_tokens") or 0
        usage.llm_seconds += line.get("llm_seconds", line.get("latency_s")) or 0.0
    usage.llm_seconds = round(usage.llm_seconds, 3)
    return usage.as_dict()
