"""What generation asks: a run's parameters (``GenerateConfig``) and the plan of call ``i`` (topic, genre,
length, reading level and LLM seed from ``random.Random(f"{seed}:{i}")``), its schema and its messages.

Two optional modes change what a call asks (both recorded in the call's ``CallSpec`` and so in the
checkpoint; the default, ``bundle_size=1`` and no ``seed_texts``, asks exactly what it always did):

* ``bundle_size=K`` (> 1): one call asks for one *bundle* of K texts over one shared label pool under the
  cross-role rule (prompt ``hardset_bundle``, schema ``bundle_request_schema``); the rule is checked in code
  afterwards (``gliznet.generation.bundles``).
* ``seed_texts``: every call grounds its texts in one real passage (``gliznet.generation.seeds``): the LLM
  rewrites it into the drawn genre, length and level, then labels (prompt ``hardset_seeded``, or
  ``hardset_bundle`` with the passage).  ``plan_for(config, i)`` adds the passage to call ``i``'s plan.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from gliznet.errors import UserError
from gliznet.generation.aimed import SIBLINGS, expand_answer, load_label_set, read_label_set, target_of, texts_schema
from gliznet.generation.prompts import PromptTemplate
from gliznet.generation.seeds import load_seed_texts
from gliznet.llm.registry import PROVIDERS
from gliznet.records import Limits

MAX_LISTED = 30  # an aimed prompt lists at most this many of the set's other labels (the closest)
# the prompt of a --labels run: the angled one (each call names a drawn angle) was >= the plain hardset_aimed on the
# choose sets of bench/targeted.py at 16 and 48 texts a label (the default --records is in that range), at the same
# cost, and below it at 128 (bench/README.md, "Data aimed at a label set"); {"prompt_id": "hardset_aimed"} in
# --config selects the plain one
AIMED_PROMPT = "hardset_aimed_angles"
PASSAGE_MAX_CHARS = 1500  # a seed passage is cut to this many characters in the prompt
DATA_DIR: Traversable = resources.files("gliznet.data")  # the repository's data/, installed as package data


def check_llm_options(provider: str, concurrency: int) -> None:
    """The options every LLM run takes (``GenerateConfig``, ``DescribeConfig``): a known provider, >= 1 call at a time."""
    if provider not in PROVIDERS:
        raise UserError(f"--provider '{provider}' is unknown: use one of {', '.join(PROVIDERS)}")
    if concurrency < 1:
        raise UserError(f"--concurrency must be >= 1 (got {concurrency})")


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
    prompt_id: str = "hardset_batch"  # with the default, bundles / seeds pick hardset_bundle / hardset_seeded
    limits: Limits = field(default_factory=Limits)
    bundle_size: int = 1  # --bundle-size K: one call = one cross-role bundle of K texts (1: records_per_call texts)
    seed_texts: str | None = None  # --seed-texts PATH|HF_DATASET[:split[:column]]: one passage grounds each call
    labels: str | None = None  # --labels "a,b,c" | FILE: every call aims at one of the user's labels (generation.aimed)
    task: str | None = None  # --task: what the texts are, one line (required with --labels)
    multi_label: bool = False  # --multi-label: a text may carry several of --labels (only named siblings negative)

    def __post_init__(self) -> None:
        if isinstance(self.limits, dict):  # from a --config file or a manifest's parameters
            self.limits = Limits(**self.limits)
        check_llm_options(self.provider, self.concurrency)
        if self.records < 1:
            raise UserError(f"--records must be >= 1 (got {self.records}): ask for at least one record")
        if not 1 <= self.records_per_call <= 20:
            raise UserError(f"--records-per-call must be in 1..20 (got {self.records_per_call})")
        if self.max_calls is not None and self.max_calls < 1:
            raise UserError(f"--max-calls must be >= 1 (got {self.max_calls})")
        if not 1 <= self.bundle_size <= 10:
            raise UserError(f"--bundle-size must be in 1..10 (got {self.bundle_size}): 1 turns bundles off")
        if self.seed_texts is not None:
            load_seed_texts(self.seed_texts)  # a bad --seed-texts is one clear error before any LLM call
        if self.labels is not None:
            self._check_aimed()
        if self.prompt_id == "hardset_batch":
            if self.labels is not None:
                self.prompt_id = AIMED_PROMPT
            elif self.bundle_size > 1:
                self.prompt_id = "hardset_bundle"
            elif self.seed_texts is not None:
                self.prompt_id = "hardset_seeded"

    def _check_aimed(self) -> None:
        """--labels: a task line, no bundles or passages, and bounds that fit one label a text."""
        label_set = read_label_set(self.labels)  # a bad --labels is one clear error before anything starts
        if not (self.task or "").strip() or "\n" in self.task:
            raise UserError('--labels needs --task: one line saying what the texts are, e.g. --task "a sentence '
                            'from a movie review"')
        if self.bundle_size > 1 or self.seed_texts is not None:
            raise UserError("--labels cannot be combined with --bundle-size or --seed-texts: drop one of them")
        self.task = " ".join(self.task.split())
        if self.limits == Limits():  # one label a text; a two-label set has one negative
            self.limits = Limits(max_labels=1, min_not_labels=1, max_not_labels=min(15, len(label_set) - 1))

    @property
    def label_set(self):
        """The ``--labels`` set, parsed and ranked (``generation.aimed.LabelSet``), or None."""
        return None if self.labels is None else load_label_set(self.labels)

    @property
    def texts_per_call(self) -> int:
        """Texts one call asks for: the bundle's K, else ``records_per_call``."""
        return self.bundle_size if self.bundle_size > 1 else self.records_per_call

    @property
    def call_budget(self) -> int:
        if self.max_calls is not None:
            return self.max_calls
        return max(4, -(-6 * self.records // self.texts_per_call))

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
    bundle_size: int = 1  # > 1: this call asks for one cross-role bundle
    seed_id: str | None = None  # the passage that grounds this call (--seed-texts), its id in the source
    seed_text: str | None = None
    seed_pass: int = 0  # 0: the passage's first use in the run; n: its (n+1)-th, after the pool was exhausted
    target: str | None = None  # --labels: the label this call's texts are written for
    target_description: str | None = None
    siblings: tuple[str, ...] = ()  # its most confusable labels, named in the prompt
    not_labels: tuple[str, ...] = ()  # the negatives every text of the call gets
    others: tuple[str, ...] = ()  # the set's other labels as the prompt lists them (at most MAX_LISTED)
    angle: str = ""  # --labels: a drawn angle (data/styles.json "angles") that AIMED_PROMPT names


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


def plan_for(config: GenerateConfig, index: int) -> CallSpec:
    """Call ``index`` of the run ``config``: ``plan_call`` plus the run's bundle size and, with ``seed_texts``,
    the passage ``SeedPool.pick(seed, index)`` draws for it (never reused before the pool is exhausted)."""
    spec = plan_call(config.seed, index)
    if config.labels is not None:
        return aimed_call(config, index)
    if config.bundle_size > 1:
        spec = replace(spec, bundle_size=config.bundle_size)
    if config.seed_texts is not None:
        passage, seed_pass = load_seed_texts(config.seed_texts).pick(config.seed, index)
        spec = replace(spec, domain="seed passage", topic=passage.id, seed_id=passage.id,
                       seed_text=passage.text, seed_pass=seed_pass)
    return spec


def aimed_call(config: GenerateConfig, index: int) -> CallSpec:
    """Call ``index`` of a ``--labels`` run: its target (``aimed.target_of``: balanced, seeded), the target's
    siblings and negatives, and a drawn length, reading level and register (in ``genre``)."""
    global _STYLES
    if _STYLES is None:
        _STYLES = load_styles()
    labels = config.label_set
    i = target_of(config.seed, index, len(labels))
    rng = random.Random(f"{config.seed}:{index}")
    return CallSpec(
        index=index, seed=rng.randrange(2**31), domain="aimed", topic=labels.labels[i],
        genre=rng.choice(_STYLES["registers"]), length=rng.choice(_STYLES["lengths"]),
        reading_level=rng.choice(_STYLES["reading_levels"]), target=labels.labels[i],
        target_description=labels.descriptions[i], siblings=tuple(labels.siblings(i, SIBLINGS)),
        not_labels=tuple(labels.negatives(i, config.multi_label, config.limits.max_not_labels)),
        others=tuple(labels.labels[j] for j in labels.ranked[i][SIBLINGS:SIBLINGS + MAX_LISTED]),
        angle=rng.choice(_STYLES["angles"]),  # drawn last: the earlier draws stay those of older plans
    )


def answer_of(line: dict, spec: CallSpec) -> str:
    """A checkpoint line's answer in the batch shape validation reads (an aimed call's texts get their labels)."""
    if spec.target is None:
        return line["raw"]
    return expand_answer(line["raw"], spec.target, list(spec.not_labels))


def request_schema_for(config: GenerateConfig) -> dict:
    """The schema one call of ``config`` asks for: a batch, a bundle with its label pool, or aimed texts."""
    if config.labels is not None:
        limits = config.limits
        return texts_schema(config.records_per_call, limits.min_text_chars, min(1000, limits.max_text_chars))
    if config.bundle_size > 1:
        return bundle_request_schema(config.limits, config.bundle_size)
    return request_schema(config.limits, config.records_per_call)


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


def bundle_request_schema(limits: Limits, bundle_size: int) -> dict:
    """A bundle: ``{"pool": [labels], "records": [K items]}``, the pool first so the model writes it before the
    texts.  That every item's labels come from the pool, and the cross-role rule, are checked in code."""
    schema = request_schema(limits, bundle_size)
    label = schema["properties"]["records"]["items"]["properties"]["labels"]["items"]
    pool = {"type": "array", "items": label, "minItems": bundle_size, "maxItems": min(40, 4 * bundle_size)}
    return {**schema, "properties": {"pool": pool, **schema["properties"]}, "required": ["pool", "records"]}


def render_call(prompt: PromptTemplate, spec: CallSpec, config: GenerateConfig) -> tuple[str, str]:
    """(system, user) messages of one call: the template filled with the call's plan and the bounds
    (templates that do not use ``passage`` / ``bundle_size`` / ``pool_size`` ignore them)."""
    limits = config.limits
    return prompt.render(
        task=config.task, target=spec.target, target_description=spec.target_description,
        siblings=list(spec.siblings), other_labels=list(spec.others), passage=(spec.seed_text or "")[:PASSAGE_MAX_CHARS], bundle_size=config.bundle_size,
        pool_size=3 * config.bundle_size,
        n_records=config.texts_per_call, topic=spec.topic, domain=spec.domain, genre=spec.genre,
        length=spec.length, reading_level=spec.reading_level, angle=spec.angle, min_labels=limits.min_labels,
        max_labels=limits.max_labels, min_not_labels=limits.min_not_labels, max_not_labels=limits.max_not_labels,
    )


def prompt_text(prompt: PromptTemplate, line: dict, config: GenerateConfig) -> str:
    """The user prompt a checkpoint line was answered from (for prompt-echo detection)."""
    return render_call(prompt, CallSpec(**line["spec"]), config)[1]
