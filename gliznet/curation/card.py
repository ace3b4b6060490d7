"""The dataset card: statistics (polars), a hardness check (reference embedder), and the README text.

1. ``compute_stats`` - counts of records and splits, label frequencies, labels per record, text length
   (chars and words: min / median / mean / max), acceptance and rejection by reason, and acceptance by
   provider / model / prompt_hash / genre.  Everything is computed with polars from the records and
   rejections, so the card can never disagree with the data it describes.
2. ``hardness`` - are the negatives *hard*?  A reference scorer (cosine between mean-pooled MiniLM text and
   label vectors) scores each record.  With ``w`` the score of its weakest positive label:

       hard   = share of the record's not_labels scoring above w
       random = share of as many random labels (from the rest of the dataset's labels) scoring above w

   averaged over records.  Hard negatives should beat random labels far more often (hard >> random).
3. ``render_card`` - the Hugging Face dataset card: YAML header (``configs`` triplet / couplet, licence,
   task category, tags), then how it was made, statistics tables, rejections by reason, hardness and usage.
4. ``run_summary_markdown`` - the few-line summary of a finished dataset (counts, rejections, hardness) that
   the ``generate-hardset`` flow publishes as its Prefect artifact.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from gliznet.curation.cost import cost_line
from gliznet.curation.split import SplitResult
from gliznet.records import Record, Rejection, label_key

TOP_LABELS = 25
GROUP_FIELDS = ("provider", "model", "prompt_hash", "genre")


# ------------------------------------------------------------------------------------------ stats


def _summary(series: pl.Series) -> dict:
    """min / median / mean / max of a numeric column (zeros when empty)."""
    if series.len() == 0:
        return {"min": 0, "median": 0.0, "mean": 0.0, "max": 0}
    return {"min": int(series.min()), "median": float(series.median()),
            "mean": round(float(series.mean()), 2), "max": int(series.max())}


def _records_frame(records: list[Record]) -> pl.DataFrame:
    schema = {"text": pl.String, "labels": pl.List(pl.String), "not_labels": pl.List(pl.String),
              **{f: pl.String for f in GROUP_FIELDS}}
    rows = [{"text": r.text, "labels": r.labels, "not_labels": r.not_labels,
             **{f: str(getattr(r.provenance, f)) for f in GROUP_FIELDS}} for r in records]
    return pl.DataFrame(rows, schema=schema)


def _rejections_frame(rejections: list[Rejection]) -> pl.DataFrame:
    schema = {"reason": pl.String, **{f: pl.String for f in GROUP_FIELDS}}
    rows = [{"reason": r.reason.value,
             **{f: (str(getattr(r.provenance, f)) if r.provenance is not None else "unknown")
                for f in GROUP_FIELDS}} for r in rejections]
    return pl.DataFrame(rows, schema=schema)


def _label_frequency(frame: pl.DataFrame, column: str, top: int) -> list[dict]:
    """Most frequent labels by ``label_key``, shown in their most common written form."""
    labels = frame.select(pl.col(column).explode().alias("label")).drop_nulls()
    if labels.height == 0:
        return []
    labels = labels.with_columns(pl.col("label").map_elements(label_key, return_dtype=pl.String).alias("key"))
    shown = (labels.group_by("key", "label").len().sort(["len", "label"], descending=[True, False])
             .group_by("key", maintain_order=True).first().select("key", pl.col("label").alias("shown")))
    counts = labels.group_by("key").len().join(shown, on="key")
    counts = counts.sort(["len", "key"], descending=[True, False]).head(top)
    return [{"label": row["shown"], "count": int(row["len"])} for row in counts.iter_rows(named=True)]


def _acceptance_by(accepted: pl.DataFrame, rejected: pl.DataFrame, field: str) -> list[dict]:
    a = accepted.group_by(field).len().rename({"len": "accepted"})
    r = rejected.group_by(field).len().rename({"len": "rejected"})
    joined = a.join(r, on=field, how="full", coalesce=True).fill_null(0)
    joined = joined.with_columns(
        (pl.col("accepted") / (pl.col("accepted") + pl.col("rejected"))).round(4).alias("acceptance_rate"))
    joined = joined.sort(["accepted", field], descending=[True, False])
    return [{"value": row[field], "accepted": int(row["accepted"]), "rejected": int(row["rejected"]),
             "acceptance_rate": float(row["acceptance_rate"])} for row in joined.iter_rows(named=True)]


def compute_stats(records: list[Record], rejections: list[Rejection], counts: dict,
                  split: SplitResult | None, top_labels: int = TOP_LABELS) -> dict:
    """Dataset statistics for the card and the manifest (plain JSON-able dict).

    ``acceptance_rate = accepted / (accepted + rejected)``: a rejection is one refused item, except
    ``invalid_json`` / ``wrong_shape`` / ``empty_batch`` / ``llm_call_failed`` for a whole answer,
    which count once each.  ``counts`` (fixes, exact merges) is copied in as ``fixes``.
    """
    frame = _records_frame(records)
    refused = _rejections_frame(rejections)
    lengths = frame.select(
        pl.col("text").str.len_chars().alias("chars"),
        pl.col("text").str.count_matches(r"\S+").alias("words"),
        pl.col("labels").list.len().alias("labels"),
        pl.col("not_labels").list.len().alias("not_labels"),
    ) if frame.height else pl.DataFrame(schema={"chars": pl.Int64, "words": pl.Int64, "labels": pl.Int64,
                                                 "not_labels": pl.Int64})
    by_reason = refused.group_by("reason").len().sort(["len", "reason"], descending=[True, False])
    total = frame.height + refused.height
    stats: dict = {
        "records": frame.height,
        "rejected": refused.height,
        "acceptance_rate": round(frame.height / total, 4) if total else 0.0,
        "rejections_by_reason": {row["reason"]: int(row["len"]) for row in by_reason.iter_rows(named=True)},
        "fixes": {str(k): int(v) for k, v in sorted(dict(counts).items())},
        "distinct_labels": len({label_key(x) for r in records for x in r.labels}),
        "distinct_not_labels": len({label_key(x) for r in records for x in r.not_labels}),
        "label_frequency": _label_frequency(frame, "labels", top_labels),
        "not_label_frequency": _label_frequency(frame, "not_labels", top_labels),
        "labels_per_record": _summary(lengths["labels"]),
        "not_labels_per_record": _summary(lengths["not_labels"]),
        "text_chars": _summary(lengths["chars"]),
        "text_words": _summary(lengths["words"]),
        "by": {field: _acceptance_by(frame, refused, field) for field in GROUP_FIELDS},
    }
    if split is not None:
        stats["splits"] = {"train": len(split.train), "test": len(split.test),
                           "test_labels": len(split.test_labels),
                           "train_labels": len({label_key(x) for r in split.train for x in r.labels}),
                           "removed_by_split": {k: int(v) for k, v in sorted(split.counts.items())}}
    return stats


# --------------------------------------------------------------------------------------- hardness


def hardness(records: list[Record], embedder, seed: int = 0, max_records: int = 500) -> dict:
    """Share of hard negatives vs random labels scoring above the weakest positive (see module docstring).

    ``embedder.encode(list[str]) -> (n, d)`` L2-normalised vectors (``gliznet.modeling.backbone.Embedder``).
    Up to ``max_records`` records (seeded sample) are scored; every distinct string is embedded once.
    Records without positives or negatives are skipped; the random share skips records whose
    pool of other labels is empty.
    """
    rng = random.Random(seed)
    pool_by_key: dict[str, str] = {}
    for r in records:
        for x in [*r.labels, *r.not_labels]:
            pool_by_key.setdefault(label_key(x), x)
    pool_keys = sorted(pool_by_key)
    chosen = [r for r in records if r.labels and r.not_labels]
    if len(chosen) > max_records:
        chosen = rng.sample(chosen, max_records)

    plans = []
    for r in chosen:
        own = {label_key(x) for x in [*r.labels, *r.not_labels]}
        others = [k for k in pool_keys if k not in own]
        drawn = rng.sample(others, min(len(r.not_labels), len(others)))
        plans.append((r, [pool_by_key[k] for k in drawn]))

    strings = sorted({s for r, drawn in plans for s in [r.text, *r.labels, *r.not_labels, *drawn]})
    result = {"hard_negative_above_weakest_positive": 0.0, "random_label_above_weakest_positive": 0.0,
              "records_scored": 0, "scorer": _scorer_name(embedder)}
    if not plans:
        return result
    vectors = np.asarray(embedder.encode(strings), dtype=np.float32)
    index = {s: i for i, s in enumerate(strings)}

    def cos(text: str, labels: list[str]) -> np.ndarray:
        return vectors[[index[x] for x in labels]] @ vectors[index[text]]

    hard, rand, pos_mean, neg_mean, rand_mean = [], [], [], [], []
    for r, drawn in plans:
        positive = cos(r.text, r.labels)
        negative = cos(r.text, r.not_labels)
        weakest = float(positive.min())
        hard.append(float((negative > weakest).mean()))
        pos_mean.append(float(positive.mean()))
        neg_mean.append(float(negative.mean()))
        if drawn:
            random_scores = cos(r.text, drawn)
            rand.append(float((random_scores > weakest).mean()))
            rand_mean.append(float(random_scores.mean()))
    result.update({
        "hard_negative_above_weakest_positive": round(float(np.mean(hard)), 4),
        "random_label_above_weakest_positive": round(float(np.mean(rand)), 4) if rand else 0.0,
        "records_scored": len(plans),
        "mean_cosine_positive": round(float(np.mean(pos_mean)), 4),
        "mean_cosine_not_label": round(float(np.mean(neg_mean)), 4),
        "mean_cosine_random_label": round(float(np.mean(rand_mean)), 4) if rand_mean else 0.0,
    })
    return result


def _scorer_name(embedder) -> str:
    model = getattr(embedder, "model", None)
    name = getattr(getattr(model, "config", None), "_name_or_path", None) or type(embedder).__name__
    path = Path(name)
    name = path.parent.name if path.name == "model" else path.name   # packaged MiniLM: .../<package>/model
    return f"cosine of mean-pooled, L2-normalised embeddings ({name})"


# ------------------------------------------------------------------------------------------ card


def _header(stats: dict, manifest: dict) -> str:
    size = stats.get("records", 0)
    bucket = ("n<1K" if size < 1_000 else "1K<n<10K" if size < 10_000 else "10K<n<100K" if size < 100_000
              else "100K<n<1M")
    configs = []
    for i, name in enumerate(("triplet", "couplet")):
        entry = {"config_name": name,
                 "data_files": [{"split": s, "path": f"{name}/{s}/*.arrow"} for s in ("train", "test")]}
        if i == 0:
            entry["default"] = True
        configs.append(entry)
    meta = {
        "license": manifest.get("license", "apache-2.0"),
        "language": manifest.get("language", ["en"]),
        "task_categories": ["zero-shot-classification"],
        "tags": ["zero-shot", "synthetic", "llm-generated", "hard-negatives", "gliznet"],
        "pretty_name": manifest.get("pretty_name", "ZSHOT-HARDSET"),
        "size_categories": [bucket],
        "configs": configs,
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _table(headers: list[str], rows: list[list]) -> str:
    def cell(x) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def _summary_rows(stats: dict) -> list[list]:
    rows = []
    for name, key in (("text length (chars)", "text_chars"), ("text length (words)", "text_words"),
                      ("labels per record", "labels_per_record"),
                      ("not_labels per record", "not_labels_per_record")):
        s = stats.get(key, {})
        rows.append([name, s.get("min", 0), s.get("median", 0), s.get("mean", 0), s.get("max", 0)])
    return rows


def _aimed_section(aimed: dict) -> str:
    """The card's section for a run aimed at the user's labels: task, negatives, split and per-label counts."""
    rows = [[row["label"], row["accepted"], row["train"], row["test"], ", ".join(row["siblings"])]
            for row in aimed["per_label"]]
    return ("## Aimed at a label set\n\n"
            f"Task given to the writer: *{aimed['task']}*. Each call aimed at one of the {aimed['labels']} labels "
            "(balanced, seeded) and asked for texts that are clearly it and not its most confusable siblings "
            f"(by MiniLM label similarity). Negatives of a text: {aimed['negatives']}. "
            f"{'Multi-label' if aimed['multi_label'] else 'Mutually exclusive labels'}. Split: {aimed['split']}.\n\n"
            + _table(["label", "accepted", "train", "test", "confusable siblings named"], rows) + "\n")


def render_card(stats: dict, manifest: dict, hardness: dict | None) -> str:
    """Markdown dataset card with a Hugging Face YAML header (see module docstring)."""
    repo = manifest.get("repo_id", "<user>/zshot-hardset")
    params = manifest.get("parameters", manifest.get("params", {}))
    parts = [_header(stats, manifest), f"# {manifest.get('pretty_name', 'ZSHOT-HARDSET')}\n",
             "Zero-shot text classification data with **hard negatives**: every example has a `text`, its "
             "true `labels`, and `not_labels` - plausible labels that do not apply. "
             + ("The data is aimed at one label set (below): every label is a target, so the split is **by "
                "texts** and train and test share their labels.\n" if manifest.get("aimed") else
                "The test split uses only labels that never occur in train (by case- and separator-insensitive "
                "label key), so it measures zero-shot generalisation.\n")]
    if manifest.get("aimed"):
        parts += [_aimed_section(manifest["aimed"])]

    made = [["records accepted", stats.get("records", 0)], ["items rejected", stats.get("rejected", 0)],
            ["acceptance rate", stats.get("acceptance_rate", 0.0)]]
    for key in ("version", "fingerprint", "created_at", "git_commit"):
        if key in manifest:
            made.append([key, manifest[key]])
    for key in ("provider", "model", "prompt_id", "source"):
        if key in params:
            made.append([key, params[key]])
    parts += ["## How it was made\n",
              "An LLM was prompted (structured JSON output) for batches of records across seed topics, genres, "
              "lengths and reading levels. Each answer was validated (JSON shape, text length, prompt echo, "
              "label counts), labels were normalised (Unicode NFKC, whitespace; a label in both lists was "
              "dropped from `not_labels`), exact duplicates were merged and near-duplicates removed with a "
              "negation-safe fuzzy match, then labels were split into disjoint train / test label sets.\n",
              _table(["item", "value"], made) + "\n"]
    if params:
        parts += ["<details><summary>generation parameters</summary>\n",
                  "```json\n" + json.dumps(params, indent=2, ensure_ascii=False, default=str) + "\n```\n",
                  "</details>\n"]

    parts += ["## Statistics\n"]
    if "splits" in stats:
        sp = stats["splits"]
        parts += [_table(["split", "records", "distinct labels"],
                         [["train", sp["train"], sp.get("train_labels", "")],
                          ["test", sp["test"], sp["test_labels"]]]) + "\n"]
        removed = sp.get("removed_by_split", {})
        if removed:
            parts += ["Removed or counted by the zero-shot split:\n",
                      _table(["count", "value"], [[k, v] for k, v in removed.items()]) + "\n"]
    parts += [_table(["quantity", "min", "median", "mean", "max"], _summary_rows(stats)) + "\n",
              f"Distinct labels: {stats.get('distinct_labels', 0)}; distinct not_labels: "
              f"{stats.get('distinct_not_labels', 0)}.\n",
              "Most frequent labels:\n",
              _table(["label", "records"], [[x["label"], x["count"]]
                                            for x in stats.get("label_frequency", [])]) + "\n"]

    reasons = stats.get("rejections_by_reason", {})
    parts += ["## Rejections by reason\n",
              (_table(["reason", "count"], [[k, v] for k, v in reasons.items()]) if reasons
               else "No item was rejected.") + "\n"]
    parts += _calls_section(manifest.get("counts", {}))
    fixes = stats.get("fixes", {})
    if fixes:
        parts += ["Repairs applied to kept items (not rejections):\n",
                  _table(["fix", "count"], [[k, v] for k, v in fixes.items()]) + "\n"]
    for field, rows in stats.get("by", {}).items():
        if len(rows) > 1 or field in ("provider", "model"):
            parts += [f"Acceptance by {field}:\n",
                      _table([field, "accepted", "rejected", "acceptance rate"],
                             [[r["value"], r["accepted"], r["rejected"], r["acceptance_rate"]]
                              for r in rows[:20]]) + "\n"]

    parts += ["## Hardness\n"]
    if hardness:
        parts += [f"Reference scorer: {hardness.get('scorer', 'embedding cosine')}; "
                  f"{hardness.get('records_scored', 0)} records scored. For each record, w = score of its "
                  "weakest true label; the table gives the share of labels scoring above w.\n",
                  _table(["candidates", "share above weakest positive"],
                         [["not_labels (hard negatives)", hardness.get("hard_negative_above_weakest_positive")],
                          ["random labels from the dataset",
                           hardness.get("random_label_above_weakest_positive")]]) + "\n",
                  "Hard negatives that outscore true labels more often than random labels do are what make "
                  "the set hard.\n"]
    else:
        parts += ["Not computed for this build.\n"]
    parts += _negative_check_section(manifest.get("negative_check"))
    parts += _bundles_and_seeds_section(manifest)
    if manifest.get("cost"):
        parts += ["## Cost\n", cost_line(manifest["cost"]) + " (the LLM calls this run made).\n"]

    parts += ["## Usage\n",
              "```python\nimport datasets\n\n"
              "# the folder as written by gliznet\n"
              "triplet = datasets.load_from_disk(\"<folder>/triplet\")   # text, labels, not_labels\n"
              "couplet = datasets.load_from_disk(\"<folder>/couplet\")   # text, labels\n\n"
              "# from the Hub\n"
              f"ds = datasets.load_dataset(\"{repo}\", \"triplet\")\n"
              "test_labels = sorted({l for row in ds[\"test\"] for l in row[\"labels\"] + row[\"not_labels\"]})\n"
              "```\n"]
    return "\n".join(parts)


def _calls_section(counts: dict) -> list[str]:
    """LLM calls by outcome: a failed call either got no answer (transport: asked again by a re-run of the same
    command) or got an answer that is kept as data (a refusal)."""
    if "calls" not in counts:
        return []
    failed = counts.get("calls_failed", 0)
    transport = counts.get("calls_failed_transport", 0)
    rows = [["calls", counts["calls"]], ["answered", counts["calls"] - failed],
            ["failed: no answer (transport; asked again by a re-run)", transport],
            ["failed: answered with an error (kept)", counts.get("calls_failed_answer", failed - transport)]]
    if counts.get("checkpoint_lines_unreadable"):
        rows.append(["unreadable checkpoint lines skipped (their calls asked again)",
                     counts["checkpoint_lines_unreadable"]])
    return ["LLM calls:\n", _table(["calls", "count"], rows) + "\n"]


def _negative_check_section(check: dict | None) -> list[str]:
    """The false-negative check beside hardness: both shares over the same scored negatives."""
    if not check:
        return ["False-negative check: off for this build (`--negative-check embed` or `llm` turns it on).\n"]
    return ["### False-negative check\n",
            f"Rule: {check['rule']}; scorer: {check.get('scorer', '')}; suspects {check['action']}.\n",
            _table(["negatives checked", "hard (above weakest positive)", "suspect false negatives",
                    "dropped"],
                   [[check["negatives_checked"], check["hard_above_weakest_positive"],
                     check["suspect_false_negative_rate"], check["negatives_dropped"]]]) + "\n"]


def _bundles_and_seeds_section(manifest: dict) -> list[str]:
    """The cross-role rule as checked in code (``--bundle-size``) and the use of seed passages (``--seed-texts``)."""
    parts: list[str] = []
    cross = manifest.get("cross_role")
    if cross:
        parts += ["## Cross-role bundles\n",
                  f"Rule: {cross['rule']}; {cross['policy']}.\n",
                  _table(["bundles", "texts", "pool labels", "satisfying the rule", "share", "texts breaking it",
                          "of them rejected"],
                         [[cross["bundles_checked"], cross["texts"], cross["pool_labels"],
                           cross["pool_labels_satisfying_rule"], cross["share_satisfying_rule"],
                           cross["texts_breaking_rule"], cross.get("texts_rejected", 0)]]) + "\n"]
    seeds = manifest.get("seed_texts")
    if seeds:
        parts += ["## Seed passages\n",
                  f"Source: `{seeds['source']}`; {seeds['policy']}.\n",
                  _table(["passages available", "calls grounded", "passages used", "calls reusing a passage"],
                         [[seeds["passages_available"], seeds["calls_grounded"], seeds["passages_used"],
                           seeds["calls_reusing_a_passage"]]]) + "\n"]
    return parts


def run_summary_markdown(manifest: dict) -> str:
    """A short markdown summary of a finished dataset's manifest (the flow's run artifact)."""
    counts = manifest["counts"]
    stats = manifest.get("stats", {})
    rows = "\n".join(f"| {reason} | {n} |" for reason, n in sorted(stats.get("rejections_by_reason", {}).items()))
    hard = manifest.get("hardness") or {}
    check = manifest.get("negative_check") or {}
    tail = (f"\n## False-negative check\n\nsuspect false negatives: {check.get('suspect_false_negative_rate', 'off')}"
            f"; hard (above weakest positive): {check.get('hard_above_weakest_positive', 'n/a')}; dropped: "
            f"{check.get('negatives_dropped', 0)}\n")
    if manifest.get("cross_role"):
        tail += (f"\n## Cross-role bundles\n\nshare of pool labels satisfying the rule: "
                 f"{manifest['cross_role']['share_satisfying_rule']}; texts breaking it: "
                 f"{manifest['cross_role']['texts_breaking_rule']} ({manifest['cross_role']['policy']}; rejected: "
                 f"{manifest['cross_role'].get('texts_rejected', 0)})\n")
    if manifest.get("seed_texts"):
        tail += (f"\n## Seed passages\n\n{manifest['seed_texts']['passages_used']} of "
                 f"{manifest['seed_texts']['passages_available']} used; calls reusing a passage: "
                 f"{manifest['seed_texts']['calls_reusing_a_passage']}\n")
    if manifest.get("cost"):
        tail += f"\n## Cost\n\n{cost_line(manifest['cost'])}\n"
    return (
        f"# generate-hardset {manifest['version']}\n\n"
        f"| accepted | rejected | train | test | test labels | fingerprint |\n|---|---|---|---|---|---|\n"
        f"| {counts['accepted']} | {counts['rejected']} | {counts['train']} | {counts['test']} | "
        f"{counts['test_labels']} | `{manifest['fingerprint'][:16]}` |\n\n"
        f"## Rejections by reason\n\n| reason | count |\n|---|---|\n{rows or '| (none) | 0 |'}\n\n"
        f"## Hardness (MiniLM reference scorer)\n\nhard negatives above the weakest positive: "
        f"{hard.get('hard_negative_above_weakest_positive', 'n/a')}; random labels: "
        f"{hard.get('random_label_above_weakest_positive', 'n/a')}\n" + tail
    )
