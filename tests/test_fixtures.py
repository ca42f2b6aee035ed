"""The committed tiny export (tests/fixtures/tiny-bert) is what tests/make_fixtures.py builds today.

The fast lane runs on the committed folder without torch; this test (torch lane, through `export_factory`)
exports the same checkpoint afresh and compares, so the fixture cannot silently drift from its recipe.
If it fails after a deliberate change to tests/tiny_models.py or fasttag.export, rebuild the fixture:
`python tests/make_fixtures.py`, and commit tests/fixtures/tiny-bert.
"""

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from corpus import long_document, varied_sentences
from fasttag import Tagger
from tiny_models import TINY_BERT

REBUILD = "the committed fixture is stale: rebuild it with `python tests/make_fixtures.py`"
# fields that name the build rather than the model
VOLATILE_CONFIG = {"transformers_version", "_name_or_path", "torch_dtype", "dtype"}
VOLATILE_MANIFEST = {"validation", "fasttag_version", "transformers_version"}


@pytest.fixture(scope="module")
def fresh(export_factory):
    return export_factory("bert")


def _json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _without(d: dict, keys: set) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def _spans(tagged) -> list:
    return [[(e.start, e.end, e.label) for e in doc] for doc in tagged]


def test_same_files_labels_and_config(fresh):
    assert sorted(p.name for p in TINY_BERT.iterdir()) == sorted(p.name for p in fresh.iterdir()), REBUILD
    committed, rebuilt = _json(TINY_BERT / "fasttag.json"), _json(fresh / "fasttag.json")
    assert committed["labels"] == rebuilt["labels"], REBUILD
    assert _without(committed, VOLATILE_MANIFEST) == _without(rebuilt, VOLATILE_MANIFEST), REBUILD
    assert committed["validation"]["passed"]
    configs = [_without(_json(folder / "config.json"), VOLATILE_CONFIG) for folder in (TINY_BERT, fresh)]
    assert configs[0] == configs[1], REBUILD
    specials = [_json(folder / "special_tokens_map.json") for folder in (TINY_BERT, fresh)]
    assert specials[0] == specials[1], REBUILD


def test_same_tokenizer_up_to_the_trainers_ties(fresh):
    """Everything but the vocabulary is equal; the vocabulary nearly so.

    tokenizers' WordPiece trainer breaks ties between equally frequent sub-words in an order that changes
    from run to run (about 10-16 of the 400 entries differ between two builds), so the vocabulary is
    compared by overlap; the ids the model sees are compared through the logits below.
    """
    committed, rebuilt = _json(TINY_BERT / "tokenizer.json"), _json(fresh / "tokenizer.json")
    assert _without(committed, {"model"}) == _without(rebuilt, {"model"}), REBUILD
    assert _without(committed["model"], {"vocab"}) == _without(rebuilt["model"], {"vocab"}), REBUILD
    a, b = committed["model"]["vocab"], rebuilt["model"]["vocab"]
    assert len(a) == len(b) and len(a.keys() & b.keys()) >= 0.9 * len(a), REBUILD
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert [a[t] for t in specials] == [b[t] for t in specials], REBUILD


def test_same_logits_and_entities(fresh, tmp_path):
    texts = varied_sentences(40, seed=5)
    tokenizer = Tokenizer.from_file(str(TINY_BERT / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")
    tokenizer.enable_truncation(128)
    encodings = tokenizer.encode_batch(texts)
    feeds = {
        "input_ids": np.array([e.ids for e in encodings], np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], np.int64),
    }

    def logits(folder):
        session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        return session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})[0]

    # the same ids through both graphs: the weights are the recipe's (torch's seeded initialization)
    committed, rebuilt = logits(TINY_BERT), logits(fresh)
    assert committed.shape == rebuilt.shape
    np.testing.assert_allclose(committed, rebuilt, atol=1e-4, err_msg=REBUILD)

    # and the whole run path: the fresh graph with the committed tokenizer tags as the committed fixture does
    fresh_graph = tmp_path / "fresh-graph"
    shutil.copytree(TINY_BERT, fresh_graph)
    shutil.copy(fresh / "model.onnx", fresh_graph / "model.onnx")
    texts = texts + [long_document(600)]
    a, b = Tagger.load(TINY_BERT).tag(texts), Tagger.load(fresh_graph).tag(texts)
    assert _spans(a) == _spans(b)
    assert sum(map(len, a)) > 0  # the random head predicts entities: the comparison is not of empty lists
    assert [e.score for doc in a for e in doc] == pytest.approx([e.score for doc in b for e in doc], abs=1e-4)
