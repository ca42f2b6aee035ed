"""End-to-end scoring (`fasttag eval --end-to-end`): texts rebuilt from labelled words, character-span scores."""

import json

import pytest
from click.testing import CliRunner

from fasttag.cli import cli
from fasttag.errors import UsageError
from fasttag.evaluate import gold_spans, gold_words, join_words, labelled_texts, span_scores, word_scores
from fasttag.labelled import make_labelled

SENTENCES = [
    (["Ada", "Lovelace", "met", "Charles", "Babbage", "."], ["B-PER", "I-PER", "O", "B-PER", "I-PER", "O"]),
    (["They", "lived", "in", "London", "."], ["O", "O", "O", "B-LOC", "O"]),
    (["The", "U.S.", "Navy"], ["O", "B-ORG", "I-ORG"]),
]


def _data(documents=None):
    data = make_labelled([list(w) for w, _ in SENTENCES], [list(t) for _, t in SENTENCES], "mem")
    data.documents = documents or []
    return data


def test_gold_spans_index_the_space_joined_text():
    words, tags = SENTENCES[0]
    text = " ".join(words)
    spans = gold_spans(words, tags)
    assert [(text[a:b], k) for a, b, k in spans] == [("Ada Lovelace", "PER"), ("Charles Babbage", "PER")]


@pytest.mark.parametrize("documents, expected", [("sentences", 3), (8, 2), (100, 1), ("docstart", 2)])
def test_texts_grouped_and_spans_kept(documents, expected):
    texts, spans = labelled_texts(_data([0, 0, 1]), documents)
    assert len(texts) == expected
    found = [(t[a:b], k) for t, doc in zip(texts, spans, strict=True) for a, b, k in doc]
    assert found == [("Ada Lovelace", "PER"), ("Charles Babbage", "PER"), ("London", "LOC"), ("U.S. Navy", "ORG")]


def test_bad_grouping_is_a_usage_error():
    with pytest.raises(UsageError, match="--documents"):
        labelled_texts(_data(), "paragraphs")


def test_span_scores_exact_and_partial():
    gold = [[(0, 12, "PER"), (17, 32, "PER")], [(13, 19, "LOC")]]
    pred = [[(0, 12, "PER"), (17, 24, "PER")], [(13, 19, "ORG")]]
    s = span_scores(gold, pred)
    assert s["precision"] == pytest.approx(1 / 3) and s["recall"] == pytest.approx(1 / 3)
    assert s["types"]["PER"]["f1"] == pytest.approx(0.5) and s["types"]["LOC"]["recall"] == 0
    assert s["types"]["ORG"]["precision"] == 0
    # partial: the cut "Charles" overlaps its gold span; the mislabelled London does not count
    assert s["partial"]["precision"] == pytest.approx(2 / 3) and s["partial"]["recall"] == pytest.approx(2 / 3)


def test_natural_join_writes_words_as_text_is_written_and_spans_hold():
    words = ["(", "Reuters", ")", "-", "Germany", "'s", "rate", "was", "5", "%", ",", '"', "Ada", '"', "said", "."]
    text, starts = join_words(words, "natural")
    assert text == '(Reuters) - Germany\'s rate was 5%, "Ada" said.'
    assert [text[a:a + len(w)] for a, w in zip(starts, words, strict=True)] == words
    assert join_words(words, "spaces")[0] == " ".join(words)
    texts, spans = labelled_texts(_data(), "sentences", join="natural")
    assert texts[:2] == ["Ada Lovelace met Charles Babbage.", "They lived in London."]
    assert [texts[1][a:b] for a, b, _ in spans[1]] == ["London"]  # the gold entity ends before the period
    with pytest.raises(UsageError, match="--join must be one of spaces, natural"):
        labelled_texts(_data(), "sentences", join="tight")


def test_eval_join_applies_end_to_end_and_is_recorded(tmp_path, bert_export):
    data = tmp_path / "test.txt"
    data.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in zip(*s, strict=True)) for s in SENTENCES) + "\n")
    res = CliRunner().invoke(cli, ["eval", "--model", str(bert_export), "--data", str(data), "--join", "natural"])
    assert res.exit_code == 2 and "--join applies to --end-to-end scoring only" in res.output
    out = tmp_path / "s.json"
    res = CliRunner().invoke(cli, ["eval", "--model", str(bert_export), "--data", str(data), "--end-to-end",
                                   "--join", "natural", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "words joined as text is written" in res.output
    assert json.loads(out.read_text())["data"]["join"] == "natural"


def test_docstart_documents_without_a_docstart_line_are_noted(tmp_path, bert_export):
    data = tmp_path / "test.txt"
    data.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in zip(*s, strict=True)) for s in SENTENCES) + "\n")
    res = CliRunner().invoke(cli, ["eval", "--model", str(bert_export), "--data", str(data), "--end-to-end",
                                   "--documents", "docstart"])
    assert res.exit_code == 0, res.output
    assert "3 sentences, 14 words (iob2), 1 text (docstart," in res.output
    assert "note: the data has no -DOCSTART- line between its sentences" in res.output


def test_eval_end_to_end_cli(tmp_path):
    data = tmp_path / "test.txt"
    data.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in zip(*s, strict=True)) for s in SENTENCES) + "\n")
    out = tmp_path / "scores.json"
    res = CliRunner().invoke(cli, ["eval", "--data", str(data), "--end-to-end", "--documents", "100",
                                   "--aggregation", "first", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "end-to-end entity scores" in res.output and "partial overlap" in res.output
    scores = json.loads(out.read_text())
    assert scores["mode"] == "end-to-end" and scores["data"]["texts"] == 1 and scores["types"]["PER"]["support"] == 2
    assert 0 <= scores["f1"] <= 1


def test_eval_notes_iob1_data_as_read_and_converted_not_repaired(tmp_path, bert_export):
    """WikiGold-style IOB1 (I- starts entities) is converted, not repaired; stray I- tags in IOB2 data are repaired."""
    iob1 = tmp_path / "iob1.txt"
    iob1.write_text("-DOCSTART- O\n\nAda I-PER\nLovelace I-PER\nmet O\n\nin O\nLondon I-LOC\n")
    res = CliRunner().invoke(cli, ["eval", "--model", str(bert_export), "--data", str(iob1)])
    assert res.exit_code == 0, res.output
    assert "note: the data was read as IOB1 (I- tags start entities) and converted to IOB2" in res.output
    assert "read as B-" not in res.output
    stray = tmp_path / "stray.txt"
    stray.write_text("Ada B-PER\nLovelace I-PER\nin O\nLondon I-LOC\n")
    res = CliRunner().invoke(cli, ["eval", "--model", str(bert_export), "--data", str(stray)])
    assert res.exit_code == 0, res.output
    assert "note: 1 I- tag that started an entity was read as B- (IOB2)" in res.output and "IOB1" not in res.output


@pytest.mark.parametrize("extra", [[], ["--end-to-end"]])
def test_eval_warns_of_labels_the_model_lacks_both_ways(tmp_path, bert_export, extra):
    """WNUT-17's types scored against a CoNLL model: every score is 0, said only at word level before."""
    data = tmp_path / "wnut.txt"
    data.write_text("Ada B-person\nvisited O\nOslo B-location\n\nNew B-location\nYork I-location\n")
    out = tmp_path / "s.json"
    res = CliRunner().invoke(cli, ["eval", "--model", str(bert_export), "--data", str(data), "--json", str(out),
                                   *extra])
    assert res.exit_code == 0, res.output
    assert "warning: the data has labels the model lacks: B-location, B-person, I-location" in res.output
    assert json.loads(out.read_text())["labels_unknown_to_model"] == ["B-location", "B-person", "I-location"]


def test_json_never_overwrites_the_data_nor_an_existing_file_without_overwrite(tmp_path, bert_export):
    """`eval --data victim.conll --json victim.conll` replaced the data with the scores; any file was overwritten."""
    data = tmp_path / "test.txt"
    text = "\n\n".join("\n".join(f"{w} {t}" for w, t in zip(*s, strict=True)) for s in SENTENCES) + "\n"
    data.write_text(text)
    for victim in (data, tmp_path / "sub" / ".." / "test.txt"):
        res = CliRunner().invoke(cli, ["eval", "--data", str(data), "--model", str(tmp_path / "no-model"),
                                       "--json", str(victim), "--overwrite"])
        assert res.exit_code == 2 and res.output.splitlines() == [
            f"Error: --json {victim} is the input {data}: it would be overwritten; give another path"], res.output
    assert data.read_text() == text
    out = tmp_path / "scores.json"
    out.write_text("keep me")
    args = ["eval", "--data", str(data), "--model", str(bert_export), "--end-to-end", "--json", str(out)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and res.output.splitlines() == [f"Error: {out} exists; pass --overwrite to replace it"]
    assert out.read_text() == "keep me"
    res = CliRunner().invoke(cli, [*args, "--overwrite"])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["mode"] == "end-to-end"
    res = CliRunner().invoke(cli, ["eval", "--data", str(data), "--overwrite"])
    assert res.exit_code == 2 and "--overwrite applies to --json only" in res.output


def test_engine_word_options_refused_without_end_to_end(tmp_path):
    data = tmp_path / "test.txt"
    data.write_text("Ada B-PER\n")
    res = CliRunner().invoke(cli, ["eval", "--data", str(data), "--aggregation", "first"])
    assert res.exit_code == 2 and "--end-to-end" in res.output


@pytest.mark.parametrize("extra", [[], ["--end-to-end"]])
def test_level_is_refused_in_both_scores_with_a_message_that_says_so(tmp_path, extra):
    """Without --end-to-end, --level was told it "applies to --end-to-end scoring only", where it is refused too."""
    data = tmp_path / "test.txt"
    data.write_text("Ada B-PER\n")
    res = CliRunner().invoke(cli, ["eval", "--data", str(data), "--level", "words", *extra])
    assert res.exit_code == 2 and res.output.splitlines() == [
        "Error: --level: eval scores the model's own level (entities for a span task, words for a tag task), at "
        "word level and --end-to-end alike"], res.output


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_mode_is_refused_end_to_end(tmp_path, mode):
    """`--mode default --end-to-end` was ignored without a word: end-to-end scores exact character spans."""
    data = tmp_path / "test.txt"
    data.write_text("Ada B-PER\n")
    res = CliRunner().invoke(cli, ["eval", "--data", str(data), "--end-to-end", "--mode", mode,
                                   "--model", str(tmp_path / "no-model")])  # before the model loads
    assert res.exit_code == 2 and res.output.splitlines() == [
        "Error: --mode applies to word-level scoring (seqeval's modes); --end-to-end scores exact character spans"]


# --- every span scheme and tag tasks (issue 16) ----------------------------------------------

POS = ["DT", "IN", "JJ", "NN", "NNP", "NNS", "VBD", "VBZ", "."]
BIOES = ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "E-PER", "S-PER"]
THREE_COLUMNS = "Ada NNP B-PER\nLovelace NNP I-PER\nvisited VBD O\nLondon NNP B-LOC\n. . O\n\nthe DT O\nend NN O\n"


def test_gold_spans_in_every_scheme():
    words = ["Ada", "Lovelace", "in", "Paris", "Rome"]
    text = " ".join(words)
    for tags in ("B-PER I-PER O B-LOC B-LOC", "B-PER E-PER O S-LOC S-LOC", "B-PER L-PER O U-LOC U-LOC"):
        found = [(text[a:b], k) for a, b, k in gold_spans(words, tags.split())]
        assert found == [("Ada Lovelace", "PER"), ("Paris", "LOC"), ("Rome", "LOC")], tags


def test_eval_tag_task_model(tmp_path, bert_export):
    from test_tasks import relabelled_export

    model = relabelled_export(bert_export, tmp_path / "pos", POS, drop_task=True)
    data = tmp_path / "test.txt"
    data.write_text(THREE_COLUMNS)
    out = tmp_path / "scores.json"
    res = CliRunner().invoke(cli, ["eval", "--model", str(model), "--data", str(data), "--tag-column", "1",
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "tag scores (word level)" in res.output and "macro avg" in res.output
    scores = json.loads(out.read_text())
    assert (scores["kind"], scores["metric"], scores["words"]) == ("tag", "accuracy", 7)
    assert 0 <= scores["accuracy"] <= 1 and set(scores["tags"]) >= {"NNP", "VBD", "DT", "NN", "."}
    assert sum(t["support"] for t in scores["tags"].values()) == 7
    for extra, message in ((["--mode", "strict"], "--mode applies to span tasks"),
                           (["--end-to-end", "--level", "tokens"], "eval scores the model's own level"),
                           (["--level", "words"], "eval scores the model's own level")):
        res = CliRunner().invoke(cli, ["eval", "--model", str(model), "--data", str(data), "--tag-column", "1", *extra])
        assert res.exit_code == 2 and message in res.output, res.output
    res = CliRunner().invoke(cli, ["eval", "--model", str(model), "--data", str(data), "--tag-column", "1",
                                   "--end-to-end", "--documents", "100", "--json", str(out), "--overwrite"])
    assert res.exit_code == 0, res.output
    assert "end-to-end word scores" in res.output and "word boundaries:" in res.output
    e2e = json.loads(out.read_text())
    assert e2e["mode"] == "end-to-end" and e2e["metric"] == "accuracy" and e2e["data"]["texts"] == 1
    assert e2e["words"] == 7 and 0 <= e2e["accuracy"] <= 1 and 0 < e2e["boundaries"] <= 1
    res = CliRunner().invoke(cli, ["eval", "--model", str(model), "--data", str(data)])  # the NER column
    assert res.exit_code == 1 and "holds span tags (IOB2), but the model is a tag (9 labels) task" in res.output
    res = CliRunner().invoke(cli, ["eval", "--data", str(data), "--tag-column", "1"])  # an NER model, POS data
    assert res.exit_code == 1 and "holds tags without entity prefixes" in res.output, res.output


def test_eval_tag_task_word_without_a_token_is_wrong_not_a_phantom_o(tmp_path, bert_export):
    """A lone U+200B word has no sub-token: a tag-task model (no "O" label) predicts nothing for it.

    It counts as a wrong word, against its gold tag's recall; an "O" row with P=R=F1=0 lowered the macro average.
    """
    from fasttag.schemes import NO_TAG
    from fasttag.tagger import Tagger
    from test_tasks import relabelled_export

    model = relabelled_export(bert_export, tmp_path / "pos", POS, drop_task=True)
    words = ["Ada", "visited", "\u200b", "London", "."]
    data = tmp_path / "test.txt"
    data.write_text("".join(f"{w} {t}\n" for w, t in zip(words, ["NNP", "VBD", "NN", "NNP", "."], strict=True)))
    (predicted,) = Tagger.load(model).predict_words([words])
    assert predicted[2] == NO_TAG and NO_TAG not in predicted[:2] + predicted[3:]
    out = tmp_path / "scores.json"
    res = CliRunner().invoke(cli, ["eval", "--model", str(model), "--data", str(data), "--json", str(out)])
    assert res.exit_code == 0, res.output
    scores = json.loads(out.read_text())
    rows = scores["tags"]
    assert "O" not in rows and NO_TAG not in rows and scores["words"] == 5 and rows["NN"]["support"] == 1
    assert rows["NN"]["recall"] == 0.0 and scores["correct"] == sum(p == t for p, t in zip(
        predicted, ["NNP", "VBD", "NN", "NNP", "."], strict=True))
    assert scores["macro_f1"] == pytest.approx(sum(r["f1"] for r in rows.values()) / len(rows))
    assert sum(r["support"] for r in rows.values()) == 5
    # a span model still reads such a word as O (no entity)
    assert Tagger.load(bert_export).predict_words([words])[0][2] == "O"


def test_eval_bioes_model_converts_iob2_gold(tmp_path, bert_export):
    from test_tasks import relabelled_export

    model = relabelled_export(bert_export, tmp_path / "bioes", BIOES, kind="span", scheme="bioes")
    data = tmp_path / "test.txt"
    data.write_text(THREE_COLUMNS)
    out = tmp_path / "scores.json"
    res = CliRunner().invoke(cli, ["eval", "--model", str(model), "--data", str(data), "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "converted to BIOES" in res.output and "entity scores (strict, BIOES)" in res.output
    scores = json.loads(out.read_text())
    assert scores["scheme"] == "bioes" and scores["data"]["converted_to"] == "bioes" and scores["support"] == 2
    res = CliRunner().invoke(cli, ["eval", "--model", str(model), "--data", str(data), "--end-to-end", "--json",
                                   str(out), "--overwrite"])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["types"]["PER"]["support"] == 1


def test_word_scores_exact_spans_and_tags():
    words = ["Acme", "Inc.", "rose"]
    gold = [gold_words(words, ["NNP", "NNP", "VBD"])]
    assert gold == [[(0, 4, "NNP"), (5, 9, "NNP"), (10, 14, "VBD")]]
    # the run path cut "Inc." into "Inc" and ".", and tagged "rose" as a noun
    pred = [[(0, 4, "NNP"), (5, 8, "NNP"), (8, 9, "."), (10, 14, "NN")]]
    s = word_scores(gold, pred)
    assert s["accuracy"] == pytest.approx(1 / 3) and s["correct"] == 1 and s["words"] == 3
    assert s["boundaries"] == pytest.approx(2 / 3)
    assert s["tags"]["NNP"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert s["tags"]["."]["support"] == 0 and s["tags"]["VBD"]["recall"] == 0
