"""A damaged model folder is one line naming the damaged file and the fix, never a traceback.

``save_pretrained`` writes ``gliznet_manifest.json`` last, with every file's size and SHA-256; ``from_pretrained``
checks them before it reads a weight.  A truncated head file (what an interrupted copy leaves), a file of the
right size with a flipped byte (a bad disk), and a missing file are each named.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import assert_one_clear_error, run_cli

from gliznet.errors import UserError
from gliznet.modeling.config import CONFIG_NAME, HEAD_WEIGHTS, GliZNetConfig
from gliznet.modeling.model import MANIFEST_NAME, GliZNet


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = GliZNet.from_backbone(None, GliZNetConfig(label_template=None, label_descriptions=None)).eval()
    folder = tmp_path_factory.mktemp("model") / "model"
    model.save_pretrained(folder)
    return folder


def _copy(saved, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(saved, target)
    return target


def test_the_manifest_lists_every_file_with_its_size_and_hash(saved):
    manifest = json.loads((saved / MANIFEST_NAME).read_text())
    assert set(manifest["sha256"]) == set(manifest["files"]) and HEAD_WEIGHTS in manifest["files"]
    assert all(len(digest) == 64 for digest in manifest["sha256"].values())
    GliZNet.from_pretrained(saved)  # an intact folder loads


def test_a_truncated_head_file_is_named_with_the_fix(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    head = folder / HEAD_WEIGHTS
    head.write_bytes(head.read_bytes()[: head.stat().st_size // 2])
    with pytest.raises(UserError, match=rf"{HEAD_WEIGHTS} is damaged: \d+ bytes where .* copy the whole model folder"):
        GliZNet.from_pretrained(folder)


def test_a_flipped_byte_of_the_right_size_is_found_by_its_hash(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    config = folder / CONFIG_NAME
    text = config.read_text()
    config.write_text(text.replace("{", "[", 1))  # same size, other content
    with pytest.raises(UserError, match=rf"{CONFIG_NAME} is damaged: its SHA-256 differs"):
        GliZNet.from_pretrained(folder)


def test_a_damaged_manifest_is_named(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    (folder / MANIFEST_NAME).write_text('{"files": ')
    with pytest.raises(UserError, match=rf"{MANIFEST_NAME} is damaged"):
        GliZNet.from_pretrained(folder)


@pytest.mark.slow
def test_predict_on_a_truncated_model_prints_one_line(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    head = folder / HEAD_WEIGHTS
    head.write_bytes(head.read_bytes()[:100])
    done = run_cli("predict", "--model", str(folder), "--labels", "sports,politics", "The striker scored twice.")
    line = assert_one_clear_error(done, HEAD_WEIGHTS, "damaged", "copy the whole model folder again")
    assert done.returncode == 2, line
