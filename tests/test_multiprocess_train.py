"""Two training processes (``accelerate launch --num_processes 2 --cpu``, gloo) train what one process trains
with the same global batch: the same rows per optimizer step, gradients averaged across the processes."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gliznet._io import load_triplets
from gliznet.modeling.model import GliZNet
from gliznet.training.batches import LabelCollator, pretokenize
from gliznet.training.config import TrainConfig

STEPS = 6
GLOBAL_BATCH = 8
# Loss of the saved models on the whole train split (eval mode), one process vs two.  Measured on 2 CPU cores:
# 1.1249 vs 1.1293 (0.0044, 0.6 % of the 0.71 the 6 steps moved it); the Trainer's logged train loss 1.887 vs
# 1.917.  Not bit-equal: each process pads its own half, gloo averages the gradients, Adam amplifies the
# float noise; the residual was not traced further (README "Scale-out").
LOSS_TOLERANCE = 0.01
TRAIN_LOSS_TOLERANCE = 0.05
SCORE_TOLERANCE = 0.1  # measured: up to 0.073 (the head, at head_lr 5e-2, amplifies the difference); same top label

TOPICS = {"sports": "the striker scored in the final minute", "politics": "the senate passed the new bill",
          "finance": "the bank raised interest rates again", "weather": "heavy snow is expected overnight"}
OTHERS = ["cooking", "music"]

# The run both launches execute.  Dropout off: its random masks would differ between one and two processes.
SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    from gliznet.modeling.model import GliZNet
    from gliznet.training.config import TrainConfig
    from gliznet.training.trainer import train

    built = GliZNet.from_backbone.__func__

    def without_dropout(cls, *args, **kwargs):
        model = built(cls, *args, **kwargs)
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        return model

    GliZNet.from_backbone = classmethod(without_dropout)
    train(sys.argv[1], None, sys.argv[2], TrainConfig.from_dict(json.loads(sys.argv[3])))
""")


def _rows():
    """16 rows, each with exactly two positives and two negatives: every row weighs the same in a batch mean."""
    names = list(TOPICS)
    rows = []
    for i in range(16):
        a, b = names[i % 4], names[(i + 1 + i // 4) % 4]
        if a == b:
            b = names[(i + 2) % 4]
        text = f"{TOPICS[a]}, and {TOPICS[b]} (report {i})"
        negatives = [n for n in names if n not in (a, b)]
        rows.append((text, [a, b], negatives))
    return rows


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from datasets import Dataset, DatasetDict

    root = tmp_path_factory.mktemp("dataset")
    rows = _rows()
    cols = {"text": [r[0] for r in rows], "labels": [r[1] for r in rows], "not_labels": [r[2] for r in rows]}
    DatasetDict({"train": Dataset.from_dict(cols), "test": Dataset.from_dict(cols).select(range(4))}).save_to_disk(
        str(root / "triplet"))
    return root


def _config(batch_size: int) -> dict:
    return {"max_steps": STEPS, "batch_size": batch_size, "lr": 1e-4, "head_lr": 5e-2, "eval_steps": 1000,
            "save_steps": 1000, "logging_steps": 1, "max_length": 64, "extra_negatives": 0, "label_shuffle": False,
            "underscore_to_space_prob": 0.0, "group_by_length": False, "warmup_ratio": 0.0, "cpu_threads": 1,
            "max_eval_samples": 4, "seed": 0}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(launcher: list[str], data_dir, out, batch_size: int, script) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([*launcher, str(script), str(data_dir), str(out), json.dumps(_config(batch_size))],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((out / "train_summary.json").read_text())


def _loss(model, split) -> float:
    batch = LabelCollator(model.tokenizer, TrainConfig.from_dict(_config(GLOBAL_BATCH)), train=False)(list(split))
    model.eval()
    with torch.no_grad():
        return model(**batch).loss.item()


@pytest.mark.slow
def test_two_processes_train_what_one_process_trains_with_the_same_global_batch(data_dir, tmp_path):
    script = tmp_path / "run_train.py"
    script.write_text(SCRIPT)
    one = _run([sys.executable], data_dir, tmp_path / "one", GLOBAL_BATCH, script)
    two = _run([sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu",
                "--main_process_port", str(_free_port())], data_dir, tmp_path / "two", GLOBAL_BATCH // 2, script)
    assert one["steps"] == two["steps"] == STEPS

    split = pretokenize(load_triplets(str(data_dir))["train"], GliZNet.from_backbone(None).tokenizer, 64)
    initial = _loss(GliZNet.from_backbone(None), split)
    models = {name: GliZNet.from_pretrained(tmp_path / name) for name in ("one", "two")}  # the --out folders load
    losses = {name: _loss(model, split) for name, model in models.items()}
    print(f"loss on the train split: initial {initial:.5f}, one process {losses['one']:.5f}, "
          f"two processes {losses['two']:.5f}; logged train loss {one['train_loss']:.5f} vs {two['train_loss']:.5f}")
    assert losses["one"] < initial - 10 * LOSS_TOLERANCE  # training moved the loss far more than the tolerance
    assert abs(losses["two"] - losses["one"]) <= LOSS_TOLERANCE
    assert abs(two["train_loss"] - one["train_loss"]) <= TRAIN_LOSS_TOLERANCE

    texts, labels = ["the striker scored in the final minute", "rates rose at the bank"], list(TOPICS) + OTHERS
    scores = {name: model.score(texts, labels) for name, model in models.items()}  # and score
    assert ((scores["two"] > 0) & (scores["two"] < 1)).all()
    print(f"largest score difference: {np.abs(scores['two'] - scores['one']).max():.5f}")
    np.testing.assert_allclose(scores["two"], scores["one"], atol=SCORE_TOLERANCE, rtol=0)
    assert (scores["two"].argmax(1) == scores["one"].argmax(1)).all()
