"""What generation asks: a run's parameters (``GenerateConfig``) and the plan of call ``i`` (topic, genre,
length, reading level and LLM seed from ``random.Random(f"{seed}:{i}")``), its schema and its messages."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from gliznet.generation.prompts import PromptTemplate
from gliznet.llm.registry import PROVIDERS
from gliznet.records import Limits

DATA_DIR: Traversable = resources.files("gliznet.data")  # the repository's data/, installed as package data


def check_llm_options(provider: str, concurrency: int) -> None:
    """The options every LLM run takes (``GenerateConfig``, ``DescribeConfig``): a known provider, >= 1 call at a time."""
    if provider not in PROVIDERS:
        raise ValueError(f"--provider '{provider}' is unknown: use one of {', '.join(PROVIDERS)}")
    if concurrency < 1:
        raise ValueError(f"--concurrency must be >= 1 (got {concurrency})")


@dataclass
class GenerateConfig:
    """Parameters of one generation run (all recorded in the manifest)."""

    records: int = 60
    seed: int = 0
    provider: str = "local"
    model: str | None = None
    base_url: str | None = None  # the provider's endpoint (none: its default / environment); --base-url
    records_per_call: int = 4
    concurrency: int = 4
    temperature: float = 0.8
    max_tokens: int = 1500
    max_calls: int | None = None  # default: enough calls for 6x the requested records (small models reject a lot)
    prompt_id: str = "hardset_batch"
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        check_llm_options(self.provider, self.concurrency)
        if self.records < 1:
            raise ValueError(f"--records must be >= 1 (got {self.records}): ask for at least one record")
        if not 1 <= self.records_per_call <= 20:
            raise ValueError(f"--records-per-call must be in 1..20 (got {self.records_per_call})")
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
class CallSpec:
    index: int
    seed: int
    domain: str
    topic: str
    genre: str
    length: str
    reading_level: str


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
