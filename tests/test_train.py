"""`fasttag train` end to end on a tiny random BERT, plus its label alignment and option checks."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fasttag.cli import cli
from fasttag.errors import MissingExtraError, ModelError, UsageError
from fasttag.labelled import make_labelled
from fasttag.metrics import entity_scores

# Training needs torch and transformers: the whole module is in the torch lane (skipped without them, failed in CI).
pytestmark = pytest.mark.torch

PEOPLE = ["Anna Berg", "Tom Cruz", "Lena Holtzmann", "Marek Novak", "Sara Lindqvist", "Omar"]
PLACES = ["Paris", "Oslo", "New Delhi", "Buenos Aires", "Kyoto", "Nairobi"]
ORGS = ["Acme Corporation", "United Nations", "Red Cross", "Globex"]
TEMPLATES = [
    "{PER} visited {LOC} last week .",
    "{ORG} opened an office in {LOC} .",
    "{PER} works for {ORG} in {LOC} .",
    "the weather in {LOC} was unusually mild .",
    "nothing much happened today .",
]
LABELS = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
# A head trained elsewhere, for the same labels in another order.
HEAD_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def make_sentences(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """``n`` short sentences of words and IOB2 tags from a few templates."""
    rng = random.Random(seed)
    names = {"PER": PEOPLE, "LOC": PLACES, "ORG": ORGS}
    out = []
    for _ in range(n):
        words: list[str] = []
        tags: list[str] = []
        for piece in rng.choice(TEMPLATES).split():
            if piece.startswith("{"):
                kind = piece[1:-1]
                name = rng.choice(names[kind]).split()
                words += name
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
            else:
                words.append(piece)
                tags.append("O")
        out.append((words, tags))
    return out


def build_tiny_bert(
    folder: Path, texts: list[str], vocab_size: int = 120, head_labels: list[str] | None = None
) -> Path:
    """Save a random-weight 2-layer BERT and a WordPiece tokenizer trained on ``texts``.

    The small vocabulary splits many words into several sub-tokens, as real ones do. Without
    ``head_labels`` it is a bare encoder; with them, a token classifier whose random head is sharp
    enough to predict a mix of labels.
    """
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials)
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    tok.decoder = decoders.WordPiece()
    tokenizer = transformers.BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    config = transformers.BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    if head_labels is None:
        model = transformers.BertModel(config)
    else:
        config.id2label = dict(enumerate(head_labels))
        config.label2id = {label: i for i, label in enumerate(head_labels)}
        model = transformers.BertForTokenClassification(config)
        with torch.no_grad():
            model.classifier.weight.normal_(0, 1.0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_conll(path: Path, sentences) -> Path:
    blocks = ["\n".join(f"{w} {t}" for w, t in zip(words, tags, strict=True)) for words, tags in sentences]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def tiny_texts() -> list[str]:
    return [" ".join(words) for words, _ in make_sentences(200, seed=1)]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), tiny_texts())


@pytest.fixture(scope="module")
def tiny_bert_with_head(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-bert-head")
    return build_tiny_bert(folder, tiny_texts(), head_labels=HEAD_LABELS)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert_with_head):
    """One CLI training run: CoNLL train, JSONL validation, Parquet test.

    The model starts from a random head for the same labels, kept (with its label order) and
    barely changed by the low learning rate, so that it predicts entities to be scored.
    """
    root = tmp_path_factory.mktemp("train-run")
    train = make_sentences(40, seed=2)
    train[0] = (train[0][0] + ["alone"], train[0][1] + ["I-PER"])  # a stray I- to repair
    train.append((["Paris"] * 120, ["B-LOC"] * 120))  # longer than --max-length 100
    validation = make_sentences(12, seed=3)
    test = make_sentences(12, seed=4)
    write_conll(root / "train.txt", train)
    with open(root / "valid.jsonl", "w", encoding="utf-8") as f:
        for words, tags in validation:
            f.write(json.dumps({"tokens": words, "ner_tags": tags}) + "\n")
    pq.write_table(
        pa.table({"tokens": [w for w, _ in test], "ner_tags": [t for _, t in test]}),
        root / "test.parquet",
    )
    out = root / "model"
    args = [
        "train", "--model", str(tiny_bert_with_head), "--output-dir", str(out),
        "--train", str(root / "train.txt"), "--validation", str(root / "valid.jsonl"),
        "--test", str(root / "test.parquet"),
        "--epochs", "1", "--batch-size", "8", "--max-length", "100", "--lr", "1e-6",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result, out, validation, tiny_bert_with_head


def test_train_writes_model_tokenizer_and_metrics(trained):
    result, out, _, model = trained
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {str(i): label for i, label in enumerate(HEAD_LABELS)}
    assert config["label2id"] == {label: i for i, label in enumerate(HEAD_LABELS)}
    assert (out / "tokenizer.json").is_file() and (out / "tokenizer_config.json").is_file()
    assert (out / "model.safetensors").is_file()

    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 1
    epoch = metrics["epochs"][0]
    assert epoch["epoch"] == pytest.approx(1.0)
    assert {"eval_loss", "eval_f1", "eval_precision", "eval_recall", "eval_PER_f1"} <= set(epoch)
    settings = metrics["settings"]
    assert settings["epochs"] == 1 and settings["batch_size"] == 8 and settings["lr"] == 1e-6
    assert settings["model"] == str(model)
    assert metrics["labels"] == HEAD_LABELS
    assert metrics["data"]["train"]["repaired"] == 1
    assert metrics["data"]["train"]["truncated"] == 1
    for split in ("validation", "test"):
        assert set(metrics[split]["types"]) <= {"LOC", "ORG", "PER"}
        assert metrics[split]["support"] > 0
    assert metrics["best_checkpoint"]

    assert "1 invalid I- tags repaired as B- in" in result.output
    assert "1 sentences longer than max length were truncated in training" in result.output
    assert "validation (" in result.output and "test (" in result.output
    assert "overall" in result.output


def test_reported_scores_match_a_first_subtoken_evaluation(trained):
    """Re-score the saved model the way an evaluator of the export would: first sub-tokens."""
    import torch
    import transformers

    _, out, validation, _ = trained
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    model = transformers.AutoModelForTokenClassification.from_pretrained(out).eval()
    y_true, y_pred = [], []
    for words, tags in validation:
        enc = tokenizer(words, is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            ids = model(**enc).logits[0].argmax(-1).tolist()
        first = {}
        for j, w in enumerate(enc.word_ids(0)):
            if w is not None and w not in first:
                first[w] = j
        y_true.append(tags)
        y_pred.append([model.config.id2label[ids[first[w]]] for w in range(len(words))])
    metrics = json.loads((out / "metrics.json").read_text())
    ours = entity_scores(y_true, y_pred)
    assert sum(t.startswith("B-") for s in y_pred for t in s) > 0, "the random head should predict entities"
    for key in ("precision", "recall", "f1", "support"):
        assert metrics["validation"][key] == pytest.approx(ours[key])
    assert metrics["epochs"][-1]["eval_f1"] == pytest.approx(ours["f1"])


def test_export_then_eval_reproduces_the_trained_f1(trained, tmp_path):
    """The proof that export and runtime lose nothing: eval's F1 on the ONNX export equals train's."""
    _, out, validation, _ = trained
    onnx_dir = tmp_path / "onnx"
    res = CliRunner().invoke(cli, ["export", str(out), "-o", str(onnx_dir)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    data_dir = out.parent
    for split, path in (("validation", data_dir / "valid.jsonl"), ("test", data_dir / "test.parquet")):
        report = tmp_path / f"{split}.json"
        res = CliRunner().invoke(cli, ["eval", "--model", str(onnx_dir), "--data", str(path), "--json", str(report)],
                                 catch_exceptions=False)
        assert res.exit_code == 0, res.output
        assert "overall" in res.output
        scores = json.loads(report.read_text())
        assert scores["support"] == metrics[split]["support"] > 0
        assert abs(scores["f1"] - metrics[split]["f1"]) <= 0.001
        assert abs(scores["precision"] - metrics[split]["precision"]) <= 0.001
    # and the trained export tags raw text through `fasttag run`
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"text": " ".join(w)}) + "\n" for w, _ in validation))
    res = CliRunner().invoke(cli, ["run", str(corpus), "-o", str(tmp_path / "e.jsonl"), "--model", str(onnx_dir), "-q"])
    assert res.exit_code == 0, res.output
    assert len((tmp_path / "e.jsonl").read_text().splitlines()) == len(validation)


def test_train_bare_encoder_label_all_tokens(tmp_path, tiny_bert):
    """A bare encoder gets a new head in the data's label order; no test file, no validation."""
    write_conll(tmp_path / "train.txt", make_sentences(16, seed=5))
    out = tmp_path / "model"
    args = [
        "train", "--model", str(tiny_bert), "--output-dir", str(out),
        "--train", str(tmp_path / "train.txt"), "--max-steps", "2", "--batch-size", "8",
        "--label-all-tokens",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "no validation data" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {str(i): label for i, label in enumerate(LABELS)}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == [] and "validation" not in metrics
    assert metrics["settings"]["label_all_tokens"] is True
    assert metrics["train"]["train_loss"] > 0


def test_encode_aligns_labels_to_first_subtokens(tiny_bert):
    import transformers

    from fasttag.train import IGNORE, encode, first_subtoken_tags

    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_bert)
    label2id = {label: i for i, label in enumerate(LABELS)}
    id2label = dict(enumerate(LABELS))
    data = make_labelled(
        [["Lena", "Holtzmann", "visited", "Buenos", "Aires"]],
        [["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]],
        "inline",
    )
    words = tokenizer(data.tokens[0], is_split_into_words=True).word_ids()
    assert len(words) > len(data.tokens[0]) + 2, "some word should split into sub-tokens"

    enc = encode(tokenizer, data, label2id, max_length=64)
    labels = enc.features[0]["labels"]
    first = enc.positions[0]
    assert [labels[j] for j in first] == [label2id[t] for t in data.tags[0]]
    assert sum(label != IGNORE for label in labels) == len(first)
    # Reading gold labels back at the first sub-tokens gives the gold tags.
    assert first_subtoken_tags([labels], enc.positions, id2label) == data.tags

    every = encode(tokenizer, data, label2id, max_length=64, label_all_tokens=True)
    all_labels = every.features[0]["labels"]
    for j, w in enumerate(words):
        if w is None:
            assert all_labels[j] == IGNORE
        elif j != first[w]:  # a continuation takes the I- label of its word's entity
            assert LABELS[all_labels[j]] == "I-" + data.tags[0][w][2:] or data.tags[0][w] == "O"

    short = encode(tokenizer, data, label2id, max_length=8)
    assert short.truncated == 1
    assert short.positions[0][-1] == -1  # cut off: scored as O
    assert first_subtoken_tags([[label2id["B-LOC"]] * 8], short.positions, id2label)[0][-1] == "O"


def test_tag_task_word_without_a_sub_token_is_scored_wrong_in_no_tag_s_row():
    """Training's metric, as eval's: a tag task's word with no sub-token is no phantom "O" tag in the macro average."""
    from fasttag.schemes import NO_TAG, Task
    from fasttag.train import first_subtoken_tags, score

    task = Task("tag", "none")
    id2label = {0: "NN", 1: "NNP", 2: "VBD"}
    y_pred = first_subtoken_tags([[1, 2, 0, 0]], [[1, 2, -1]], id2label, task.unpredicted)
    assert y_pred == [["VBD", "NN", NO_TAG]]
    scores = score(task, [["VBD", "NN", "NNP"]], y_pred)
    assert set(scores["tags"]) == {"NN", "NNP", "VBD"} and scores["correct"] == 2 and scores["words"] == 3
    assert scores["macro_f1"] == pytest.approx(2 / 3)
    assert first_subtoken_tags([[1, 2, 0]], [[1, -1]], id2label, Task("span", "iob2").unpredicted)[0][1] == "O"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--train", "t.txt", "--dataset", "conll2003"], "--dataset and --train cannot be used"),
        ([], "Give the training data with --train FILE"),
    ],
)
def test_dataset_and_train_are_exclusive(tmp_path, extra, message):
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path):
        Path("t.txt").write_text("a O\n")
        result = runner.invoke(cli, ["train", "--model", "m", "--output-dir", "out", *extra])
    assert result.exit_code == 2
    assert message in result.output


def test_fp16_needs_a_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    path = tmp_path / "t.txt"
    path.write_text("a O\n")
    args = ["train", "--model", "m", "--output-dir", str(tmp_path / "o"), "--train", str(path)]
    result = CliRunner().invoke(cli, [*args, "--fp16"])
    assert result.exit_code == UsageError.exit_code, result.output
    assert "Error: --fp16 needs a CUDA GPU, and none is available" in result.output


def test_missing_model_folder_is_a_model_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = write_conll(tmp_path / "t.txt", make_sentences(2, seed=0))
    result = CliRunner().invoke(
        cli,
        ["train", "--model", str(tmp_path / "no-model"), "--output-dir", str(tmp_path / "o"),
         "--train", str(path)],
    )  # fmt: skip
    assert result.exit_code == ModelError.exit_code, result.output
    assert f"Error: model folder {tmp_path / 'no-model'} does not exist" in result.output


def test_hub_dataset_class_labels_become_strings(monkeypatch):
    datasets = pytest.importorskip("datasets")
    from fasttag.train import load_splits

    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER"])),
        }
    )
    rows = {"tokens": [["Ann", "Lee", "ran"], []], "ner_tags": [[1, 2, 0], []]}
    fake = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(rows, features=features),
            "validation": datasets.Dataset.from_dict(rows, features=features),
        }
    )
    monkeypatch.setattr(datasets, "load_dataset", lambda name: fake)
    splits = load_splits(dataset="someone/ner")
    assert set(splits) == {"train", "validation"}
    assert splits["train"].tokens == [["Ann", "Lee", "ran"]]
    assert splits["train"].tags == [["B-PER", "I-PER", "O"]]
    assert splits["validation"].source == "someone/ner[validation]"


def test_missing_train_extra_is_named(monkeypatch):
    from fasttag.train import require_train_extra

    monkeypatch.setitem(sys.modules, "accelerate", None)
    with pytest.raises(MissingExtraError, match=r"needs the 'train' extra \(accelerate is not"):
        require_train_extra()


def test_reading_and_scoring_import_no_torch():
    code = (
        "import sys, fasttag.labelled, fasttag.metrics, fasttag.train, fasttag.cli_train; "
        "heavy = {'torch', 'transformers', 'datasets', 'seqeval'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_eval_reads_each_word_at_the_sub_token_training_labelled(family, checkpoint_factory, export_factory, tmp_path):
    """RoBERTa/XLM-R words can start with a bare space marker ('Ġ', '▁').

    eval must read that token, as training does.
    """
    import shutil

    import numpy as np

    from fasttag import Tagger
    from fasttag.train import _load_config_and_tokenizer, encode

    sentences = [["AFTER", "INNINGS", "VICTORY", "."],
                 ["Lena", "Holtzmann", "visited", "Buenos", "Aires", "in", "1996", "(", "AP", ")"],
                 ["x"], [], ["ÉCOLE", "Zürich", "--", "42", "naïve"]]
    ckpt = checkpoint_factory(family)
    labels = Tagger.load(export_factory(family)).labels
    _, tok, labels = _load_config_and_tokenizer(str(ckpt), labels)
    # a model trained by fasttag carries the tokenizer training used (add_prefix_space for RoBERTa) into its export
    export = tmp_path / "export"
    shutil.copytree(export_factory(family), export)
    tok.backend_tokenizer.save(str(export / "tokenizer.json"))
    tagger = Tagger.load(export)
    data = make_labelled(sentences, [["O"] * len(s) for s in sentences], "inline")
    enc = encode(tok, data, {label: i for i, label in enumerate(labels)}, max_length=128)
    chunk, word_ids = tagger.tokenizer.words(sentences)
    n_prefix = len(tagger.tokenizer.prefix_ids)
    bare = 0
    for d, words in enumerate(sentences):
        a, b = chunk.doc_offsets[d], chunk.doc_offsets[d + 1]
        assert chunk.ids[a:b].tolist() == enc.features[d]["input_ids"][n_prefix:n_prefix + b - a]
        seen, first = np.unique(word_ids[a:b], return_index=True)
        assert seen.tolist() == list(range(len(words)))
        assert (first + n_prefix).tolist() == enc.positions[d]
        # offsets index the space-joined text: every word's tokens lie within (or just before) the word
        text = " ".join(words)
        assert chunk.texts[d] == text and (chunk.offsets[a:b] <= len(text)).all()
        bare += sum(tok.convert_ids_to_tokens(int(chunk.ids[a + j])) in ("Ġ", "▁") for j in first)
    if family != "bert":
        assert bare, "the tiny tokenizer should start some word with a bare space marker"
    # and predict_words (what eval scores) reads the label at exactly those tokens
    best = tagger.infer(chunk).argmax(axis=1)
    predicted = tagger.predict_words(sentences)
    for d in range(len(sentences)):
        a = chunk.doc_offsets[d]
        assert predicted[d] == [tagger.labels[best[a + j - n_prefix]] for j in enc.positions[d]]


def test_output_dir_of_an_earlier_run_is_refused_unless_overwrite(tmp_path, tiny_bert):
    data = write_conll(tmp_path / "t.txt", make_sentences(4, seed=0))
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    base = ["train", "--model", str(tiny_bert), "--train", str(data), "--epochs", "1", "--max-steps", "1"]
    res = CliRunner().invoke(cli, [*base, "--output-dir", str(out)])
    assert res.exit_code == 2 and "is not empty (an earlier run?)" in res.output
    assert (out / "metrics.json").read_text() == "{}"
    # the model's own folder, or one holding it, is refused even with --overwrite
    for bad in (tiny_bert, tiny_bert.parent):
        res = CliRunner().invoke(cli, [*base, "--output-dir", str(bad), "--overwrite"])
        assert res.exit_code == 2 and "is, or holds, the model" in res.output
    res = CliRunner().invoke(cli, [*base, "--output-dir", str(tmp_path / "new"), "--resume-from-checkpoint", str(out)])
    assert res.exit_code == 2 and "is not a Trainer checkpoint" in res.output
    res = CliRunner().invoke(cli, [*base, "--output-dir", str(out), "--overwrite"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "metrics.json").read_text())["settings"]["max_steps"] == 1


def test_training_data_without_entities_or_types_only_in_validation_warns(tmp_path, tiny_bert):
    train = write_conll(tmp_path / "t.txt", [(["a", "b"], ["O", "O"])] * 4)
    valid = write_conll(tmp_path / "v.txt", [(["Ada", "b"], ["B-PER", "O"])] * 2)
    res = CliRunner().invoke(cli, ["train", "--model", str(tiny_bert), "--train", str(train), "--validation",
                                   str(valid),
                                   "--output-dir", str(tmp_path / "o"), "--epochs", "1", "--max-steps", "1"])
    assert res.exit_code == 0, res.output
    assert "Warning: the training data has no entities" in res.output
    assert "Warning: validation has entity types the training data lacks: PER" in res.output


def test_train_with_context_packs_documents_and_evaluates_in_order(tmp_path, tiny_bert):
    """--context packs the training sentences into windows; validation stays sentence by sentence, in order."""
    sentences = make_sentences(40, seed=7)
    train_file = tmp_path / "train.txt"
    write_conll(train_file, sentences)
    text = train_file.read_text()
    train_file.write_text("-DOCSTART- O\n\n" + text + "\n-DOCSTART- O\n\n" + text)  # two documents
    write_conll(tmp_path / "valid.txt", make_sentences(12, seed=8))
    out = tmp_path / "model"
    args = [
        "train", "--model", str(tiny_bert), "--output-dir", str(out), "--train", str(train_file),
        "--validation", str(tmp_path / "valid.txt"), "--epochs", "1", "--batch-size", "2", "--context", "64",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "80 sentences packed into" in result.output and "within documents" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    train = metrics["data"]["train"]
    assert train["sentences"] == 80 and 2 <= train["windows"] < 80
    assert metrics["settings"]["context"] == 64
    assert len(metrics["epochs"]) == 1 and 0 <= metrics["validation"]["f1"] <= 1


# --- other tasks: a tag task (POS) and a BIOES model from IOB2 data (issue 16) ----------------

POS_OF = {"the": "DT", "in": "IN", "for": "IN", "was": "VBD", "visited": "VBD", "opened": "VBD", "works": "VBZ",
          "happened": "VBD", ".": "."}


def write_three_columns(path: Path, sentences) -> Path:
    """CoNLL-2003-like columns: word, a POS tag, the NER tag."""
    def pos(word: str, tag: str) -> str:
        return "NNP" if tag != "O" else POS_OF.get(word, "NN")

    blocks = ["\n".join(f"{w} {pos(w, t)} {t}" for w, t in zip(words, tags, strict=True)) for words, tags in sentences]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def three_columns(tmp_path_factory):
    root = tmp_path_factory.mktemp("three-columns")
    for name, n, seed in (("train", 60, 2), ("valid", 15, 3), ("test", 15, 4)):
        write_three_columns(root / f"{name}.txt", make_sentences(n, seed))
    return root


def _train_export(tiny_bert, data: Path, out: Path, *extra: str) -> tuple[Path, dict]:
    args = ["train", "--model", str(tiny_bert), "--output-dir", str(out), "--train", str(data / "train.txt"),
            "--validation", str(data / "valid.txt"), "--test", str(data / "test.txt"), "--epochs", "2",
            "--batch-size", "8", "--lr", "5e-3", *extra]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    onnx = out.parent / f"{out.name}-onnx"
    res2 = CliRunner().invoke(cli, ["export", str(out), "-o", str(onnx)], catch_exceptions=False)
    assert res2.exit_code == 0, res2.output
    return onnx, {"output": res.output, **json.loads((out / "metrics.json").read_text())}


def test_tag_task_trains_by_accuracy_and_eval_reproduces_it(tmp_path, tiny_bert, three_columns):
    """POS from column 1: word accuracy chooses the epoch, and eval of the export gives train's figures."""
    onnx, metrics = _train_export(tiny_bert, three_columns, tmp_path / "pos", "--tag-column", "1")
    assert (metrics["kind"], metrics["scheme"], metrics["metric"]) == ("tag", "none", "accuracy")
    assert metrics["labels"] == [".", "DT", "IN", "NN", "NNP", "VBD", "VBZ"]  # sorted
    assert "task: tag (7 labels)" in metrics["output"] and "macro avg" in metrics["output"]
    assert {"eval_accuracy", "eval_macro_f1", "eval_NNP_f1"} <= set(metrics["epochs"][-1])
    assert metrics["validation"]["accuracy"] > 0.5, "the tiny model should learn a little"
    config = json.loads((tmp_path / "pos" / "config.json").read_text())
    assert config["fasttag_task"] == {"kind": "tag", "scheme": "none"}
    manifest = json.loads((onnx / "fasttag.json").read_text())
    assert (manifest["kind"], manifest["scheme"]) == ("tag", "none")
    info = CliRunner().invoke(cli, ["info", str(onnx)])
    assert "task:       tag (7 labels)" in info.output, info.output
    for split, name in (("validation", "valid.txt"), ("test", "test.txt")):
        report = tmp_path / f"{split}.json"
        res = CliRunner().invoke(cli, ["eval", "--model", str(onnx), "--data", str(three_columns / name),
                                       "--tag-column", "1", "--json", str(report)], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        assert "macro avg" in res.output and "accuracy" in res.output
        scores = json.loads(report.read_text())
        assert scores["metric"] == "accuracy" and scores["words"] == metrics[split]["words"]
        assert abs(scores["accuracy"] - metrics[split]["accuracy"]) <= 0.001
        assert abs(scores["macro_f1"] - metrics[split]["macro_f1"]) <= 0.001
        assert scores["tags"].keys() == metrics[split]["tags"].keys()
    # the run path's words level finds the same words and tags on these sentences as raw text
    report = tmp_path / "e2e.json"
    res = CliRunner().invoke(cli, ["eval", "--model", str(onnx), "--data", str(three_columns / "test.txt"),
                                   "--tag-column", "1", "--end-to-end", "--json", str(report)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    e2e = json.loads(report.read_text())
    assert e2e["boundaries"] == 1.0 and abs(e2e["accuracy"] - metrics["test"]["accuracy"]) <= 0.001


def test_bioes_model_from_iob2_data_and_eval_on_iob2_data(tmp_path, tiny_bert, three_columns):
    """--convert-to bioes trains a BIOES model from the IOB2 NER column; eval converts IOB2 gold to match."""
    onnx, metrics = _train_export(tiny_bert, three_columns, tmp_path / "bioes", "--convert-to", "bioes")
    assert (metrics["kind"], metrics["scheme"], metrics["metric"]) == ("span", "bioes", "f1")
    assert metrics["labels"][:5] == ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    assert "IOB2 tags converted to BIOES" in metrics["output"]
    assert json.loads((onnx / "fasttag.json").read_text())["scheme"] == "bioes"
    report = tmp_path / "test.json"
    res = CliRunner().invoke(cli, ["eval", "--model", str(onnx), "--data", str(three_columns / "test.txt"),
                                   "--json", str(report)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "converted to BIOES" in res.output and "strict, BIOES" in res.output
    scores = json.loads(report.read_text())
    assert scores["support"] == metrics["test"]["support"] > 0
    assert abs(scores["f1"] - metrics["test"]["f1"]) <= 0.001


def test_splits_of_different_tasks_are_refused(tmp_path, tiny_bert, three_columns):
    args = ["train", "--model", str(tiny_bert), "--output-dir", str(tmp_path / "o"), "--train",
            str(three_columns / "train.txt"), "--tag-column", "1", "--max-steps", "1"]
    bad = tmp_path / "valid.txt"
    bad.write_text("Paris S-LOC\n")
    res = CliRunner().invoke(cli, [*args, "--validation", str(bad)])
    assert res.exit_code == 1 and f"{bad}:1: tag 'S-LOC' carries an entity prefix" in res.output, res.output
    res = CliRunner().invoke(cli, [*args, "--scheme", "none", "--tag-column", "-1"])
    assert res.exit_code == 1 and "carries an entity prefix, but the scheme is none" in res.output, res.output
