import html
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import lanes
from corpus import varied_sentences
from fasttag import Tagger
from fasttag.cli import cli
from fasttag.entities import Entity
from fasttag.show import LABEL_COLOURS, PALETTE, drawn_entities, label_colour, render_html, render_terminal, segments

HOSTILE = 'Ada Lovelace wrote <script>alert(1)</script> & "quotes" in London.'
TEXTS = varied_sentences(8) + [HOSTILE]


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


@pytest.fixture(scope="module")
def docs(bert_export):
    return list(zip(TEXTS, Tagger.load(bert_export).tag(TEXTS), strict=True))


@pytest.fixture()
def corpus_jsonl(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in TEXTS), encoding="utf-8")
    return path


@pytest.fixture()
def corpus_parquet(tmp_path):
    path = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"doc_id": [f"d{i}" for i in range(len(TEXTS))], "text": TEXTS}), path)
    return path


# -- library --------------------------------------------------------------------------------------

def test_label_colours_are_fixed_for_conll_labels_and_stable_for_others():
    assert [label_colour(lab) for lab in ("PER", "LOC", "ORG", "MISC")] == list(LABEL_COLOURS.values())
    assert label_colour("DATE") in PALETTE
    # crc32, not hash(): the same colour in every process, whatever PYTHONHASHSEED
    code = "from fasttag.show import label_colour; print(label_colour('DATE'), label_colour('PRODUCT'))"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert runs == {f"{label_colour('DATE')} {label_colour('PRODUCT')}\n"}


def test_segments_cover_the_text_and_skip_overlaps():
    text = "Ada met Bob in Rome"
    ents = [Entity(15, 19, "LOC", 0.9, "Rome"), Entity(0, 3, "PER", 0.9, "Ada"), Entity(1, 5, "ORG", 0.5, "da m")]
    pieces = list(segments(text, ents))
    assert "".join(p for p, _ in pieces) == text
    assert [(p, e.label) for p, e in pieces if e] == [("Ada", "PER"), ("Rome", "LOC")]


def test_html_escapes_text_and_labels():
    text = '<b>x</b> & "y"'
    page = render_html([(text, [Entity(0, 8, "<i>", 0.5, "<b>x</b>")])], titles=["<row>"])
    assert "<b>" not in page and "<i>" not in page and "<row>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "&amp; &quot;y&quot;" in page
    assert page.count("<mark") == 1
    assert "http" not in page.replace('http-equiv', "")  # nothing external
    assert "<script" not in page


def test_terminal_text_is_verbatim_and_coloured_on_a_terminal():
    from rich.console import Console

    text = "[bold red]Ada[/] :smile: met Bob"
    start = text.index("Bob")
    docs = [(text, [Entity(start, start + 3, "PER", 0.9, "Bob")])]
    plain = Console(file=io.StringIO(), color_system=None, width=200)
    render_terminal(docs, plain, titles=["doc A"])
    out = plain.file.getvalue()
    assert "doc A\n[bold red]Ada[/] :smile: met [Bob PER]\n" in out  # no markup, no emoji codes read
    colour = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=200)
    render_terminal(docs, colour)
    out = colour.file.getvalue()
    assert "\x1b[" in out and "48;2;170;156;252" in out  # PER's background, #aa9cfc
    assert "[Bob PER]" not in out
    assert "(1 document, 1 entity)" in out
    # NO_COLOR on a terminal: rich drops the colours, so entities are bracketed as without a terminal
    no_colour = Console(file=io.StringIO(), force_terminal=True, no_color=True, width=200)
    render_terminal(docs, no_colour)
    assert "[Bob PER]" in no_colour.file.getvalue()


# -- HTML in a real browser -----------------------------------------------------------------------

def chromium() -> str:
    exe = lanes.chromium()
    if not exe:  # conftest already skipped (or, in CI, failed) a browser test without chromium
        lanes.skip_or_fail(lanes.missing("browser"))
    return exe


def headless(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
           "--no-first-run", "--hide-scrollbars", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


@pytest.mark.browser
def test_html_page_in_headless_chromium(tmp_path, docs):
    n_entities = sum(len(e) for _, e in docs)
    assert n_entities > 0 and drawn_entities(docs) == n_entities
    page = tmp_path / "entities.html"
    page.write_text(render_html(docs), encoding="utf-8")

    dom = headless(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<mark") == n_entities
    assert "<script" not in dom.stdout  # the document's <script> stayed text
    # the page's text, less the labels, holds every document verbatim
    body = dom.stdout.split("<body>", 1)[1]
    body = re.sub(r'<span class="label">[^<]*</span>', "", body)
    text = html.unescape(re.sub(r"<[^>]+>", "", body))
    for doc_text in TEXTS:
        assert doc_text in text
    for label in {e.label for _, ents in docs for e in ents}:
        assert f'<span class="swatch" style="background: {label_colour(label)}">{label}</span>' in dom.stdout

    png = tmp_path / "entities.png"
    shot = headless(tmp_path, f"--screenshot={png}", "--window-size=1200,900", page.as_uri())
    assert png.exists(), shot.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1200, 900)
    assert len(data) > 20_000  # a blank page compresses to a few KB; this one has text and colour
    if os.environ.get("FASTTAG_KEEP_SCREENSHOT"):
        shutil.copy(png, os.environ["FASTTAG_KEEP_SCREENSHOT"])


# -- the command ----------------------------------------------------------------------------------

def test_show_prints_entities_and_legend(corpus_jsonl, bert_export, docs):
    res = invoke("show", corpus_jsonl, "--model", bert_export, "--n", len(TEXTS))
    assert res.exit_code == 0, res.output
    for _, ents in docs:
        for e in ents:
            assert f"[{e.text} {e.label}]" in res.stdout  # no colours off a terminal: bracketed
    legend = res.stdout.strip().splitlines()[-1]
    assert legend.startswith("labels: ")
    for label in {e.label for _, ents in docs for e in ents}:
        assert label in legend
    assert f"({len(TEXTS)} documents, {sum(len(e) for _, e in docs)} entities)" in legend


def test_show_n_and_stdin(bert_export):
    lines = "".join(json.dumps({"body": t}) + "\n" for t in TEXTS)
    res = CliRunner().invoke(cli, ["show", "-", "-n", "2", "--text-column", "body", "--model", str(bert_export)],
                             input=lines)
    assert res.exit_code == 0, res.output
    assert "row 1" in res.stdout and "row 2" not in res.stdout
    assert "(2 documents," in res.stdout


def test_show_html_from_model(tmp_path, corpus_parquet, bert_export, docs):
    page = tmp_path / "p.html"
    res = invoke("show", corpus_parquet, "--model", bert_export, "--html", page)
    assert res.exit_code == 0, res.output
    assert page.read_text(encoding="utf-8").count("<mark") == sum(len(e) for _, e in docs)
    assert f"wrote {page} ({len(TEXTS)} documents" in res.stderr


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_show_entities_of_a_run(tmp_path, corpus_parquet, bert_export, docs, suffix):
    out = tmp_path / f"entities{suffix}"
    assert invoke("run", corpus_parquet, "-o", out, "--model", bert_export, "--id-column", "doc_id",
                  "-q").exit_code == 0
    res = invoke("show", "--entities", out, "--input", corpus_parquet, "--n", 50)
    assert res.exit_code == 0, res.output
    for _, ents in docs:
        for e in ents:
            assert f"[{e.text} {e.label}]" in res.stdout
    assert "row 8 · doc_id d8" in res.stdout
    page = tmp_path / "run.html"
    assert invoke("show", "--entities", out, "--input", corpus_parquet, "--html", page).exit_code == 0
    assert page.read_text(encoding="utf-8").count("<mark") == sum(len(e) for _, e in docs)


def test_entities_mode_does_not_load_onnxruntime(tmp_path, corpus_jsonl, bert_export):
    out = tmp_path / "entities.jsonl"
    assert invoke("run", corpus_jsonl, "-o", out, "--model", bert_export, "-q").exit_code == 0
    code = (
        "import sys\n"
        "from fasttag.cli import cli\n"
        "try:\n"
        "    cli.main(args=sys.argv[1:], prog_name='fasttag')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print('LOADED', sorted(m for m in ('onnxruntime', 'torch', 'transformers') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code, "show", "--entities", str(out), "--input", str(corpus_jsonl)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "labels: " in res.stdout
    assert res.stdout.strip().splitlines()[-1] == "LOADED []"


def test_entities_that_do_not_belong_to_the_input(tmp_path, corpus_jsonl, bert_export):
    out = tmp_path / "entities.jsonl"
    assert invoke("run", corpus_jsonl, "-o", out, "--model", bert_export, "-q").exit_code == 0
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({"text": t}) + "\n" for t in reversed(TEXTS)))
    res = invoke("show", "--entities", out, "--input", other)
    assert res.exit_code == 1
    assert f"{out} does not belong to {other}: row 0: entity" in res.output
    assert len(res.output.strip().splitlines()) == 1

    short = tmp_path / "short.jsonl"
    assert invoke("run", corpus_jsonl, "-o", short, "--model", bert_export, "-q", "--limit", 3).exit_code == 0
    res = invoke("show", "--entities", short, "--input", corpus_jsonl, "--n", 5)
    assert res.exit_code == 1
    assert "does not belong to" in res.output and "has 3" in res.output and "has 5" in res.output
    # within the rows it has, it does belong
    assert invoke("show", "--entities", short, "--input", corpus_jsonl, "--n", 3).exit_code == 0

    res = invoke("show", "--entities", corpus_jsonl, "--input", corpus_jsonl)
    assert res.exit_code == 1 and "no 'entities' or 'words' or 'tokens' list" in res.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--entities", "o.jsonl"], "--entities OUTPUT needs the corpus that 'fasttag run' tagged"),
        (["--input", "c.jsonl"], "--input is for --entities"),
        (["--entities", "o.jsonl", "--input", "c.jsonl", "--model", "m"],
         "--model: --entities shows an existing output"),
        (["--entities", "o.jsonl", "--input", "c.jsonl", "--stride", "8", "--device", "cpu"], "--stride, --device: "),
        (["c.jsonl", "--entities", "o.jsonl", "--input", "c.jsonl"],
         "give the corpus once: c.jsonl or --input c.jsonl"),
        (["--entities", "-", "--input", "-"], "cannot both read stdin"),
        ([], "missing INPUT"),
        (["c.jsonl", "--n", "0"], "--n"),
    ],
)
def test_contradictory_flags_fail_at_once(args, message):
    res = invoke("show", *args)
    assert res.exit_code == 2
    assert message in res.output


def test_html_into_a_missing_folder_is_refused_before_the_model_loads(tmp_path, corpus_jsonl):
    page = tmp_path / "missing" / "p.html"
    res = invoke("show", corpus_jsonl, "--model", tmp_path / "no-model", "--html", page)
    assert res.exit_code == 2, res.output  # the missing model folder is not what it reports: the page comes first
    assert res.output.strip() == f"Error: the folder of {page} does not exist"


def test_non_string_texts_are_shown_empty_as_run_tags_them(tmp_path, bert_export):
    """A number or list as a JSONL text was "unexpected TypeError: texts[1] is not a text"; run gives it no results."""
    src = tmp_path / "c.jsonl"
    src.write_text('{"text": "Ada Lovelace lives in London."}\n{"text": 5}\n{"text": ["a"]}\n{"text": null}\n')
    res = invoke("show", src, "--model", bert_export)
    assert res.exit_code == 0, res.output
    assert res.stdout.count("(empty)") == 3 and "(4 documents," in res.stdout
    out = tmp_path / "o.jsonl"
    assert invoke("run", src, "-o", out, "--model", bert_export, "-q").exit_code == 0
    shown = invoke("show", src, "--entities", out)
    assert shown.exit_code == 0 and shown.stdout == res.stdout


def test_html_never_overwrites_an_input_nor_an_existing_page_without_overwrite(tmp_path, corpus_jsonl, bert_export):
    """`show victim.jsonl --html victim.jsonl` replaced the corpus with the page, and any file was overwritten."""
    corpus = corpus_jsonl.read_bytes()
    out = tmp_path / "entities.jsonl"
    assert invoke("run", corpus_jsonl, "-o", out, "--model", bert_export, "-q").exit_code == 0
    entities = out.read_bytes()
    for args, victim in [((corpus_jsonl,), corpus_jsonl), ((corpus_jsonl,), tmp_path / "sub" / ".." / "corpus.jsonl"),
                         (("--entities", out, "--input", corpus_jsonl), out),
                         (("--entities", out, "--input", corpus_jsonl), corpus_jsonl),
                         ((corpus_jsonl, "--entities", out), out)]:
        res = invoke("show", *args, "--html", victim, "--overwrite", "--model" if len(args) == 1 else "--n",
                     bert_export if len(args) == 1 else 10)
        assert res.exit_code == 2, res.output
        assert f"--html {victim} is the input" in res.output and "it would be overwritten" in res.output
    assert corpus_jsonl.read_bytes() == corpus and out.read_bytes() == entities
    page = tmp_path / "p.html"
    page.write_text("keep me")
    res = invoke("show", corpus_jsonl, "--model", tmp_path / "no-model", "--html", page)  # before the model loads
    assert res.exit_code == 2 and res.output.splitlines() == [f"Error: {page} exists; pass --overwrite to replace it"]
    assert page.read_text() == "keep me"
    res = invoke("show", corpus_jsonl, "--model", bert_export, "--html", page, "--overwrite")
    assert res.exit_code == 0, res.output
    assert "<mark" in page.read_text(encoding="utf-8") and [f.name for f in tmp_path.glob(".*")] == []
    res = invoke("show", corpus_jsonl, "--model", bert_export, "--overwrite")
    assert res.exit_code == 2 and "--overwrite applies to --html only" in res.output


def test_entities_of_a_run_with_repaired_text_and_skipped_lines(tmp_path, bert_export):
    # a lone surrogate (tagged as U+FFFD) and a bad line skipped by the run: show lines them up the same way
    src = tmp_path / "c.jsonl"
    src.write_text('{"text": "Ada \\ud800 Lovelace met Charles Babbage in London."}\nnot json\n'
                   '{"text": "Grace Hopper worked in Arlington."}\n')
    out = tmp_path / "o.jsonl"
    res = invoke("run", src, "-o", out, "--model", bert_export, "--on-error", "skip")
    assert res.exit_code == 0, res.output
    res = invoke("show", "--entities", out, "--input", src)
    assert res.exit_code == 1 and "line 2: malformed JSON" in res.output and "--on-error skip" in res.output
    res = invoke("show", src, "--entities", out, "--on-error", "skip")  # the corpus as INPUT works too
    assert res.exit_code == 0, res.output
    # the random tiny model tags at random: check the rows and the repaired character, not the entities
    assert "row 0\n" in res.output and "row 1\n" in res.output and "(2 documents" in res.output
    assert "\ufffd" in res.output and "\\ud800" not in res.output


# -- words and tokens -------------------------------------------------------------------------------

def _pos_model(bert_export, tmp_path):
    from relabelled import POS, relabelled

    return relabelled(bert_export, tmp_path / "pos", POS)


def test_words_are_shown_with_their_tags_as_tagged_corpora_write_them():
    from rich.console import Console

    from fasttag.entities import Word

    text = "New York. Ada"
    words = [Word(0, 3, "NNP", 0.9, "New"), Word(4, 8, "NNP", 0.8, "York"), Word(8, 9, ".", 0.99, "."),
             Word(10, 13, "NNP", 0.7, "Ada")]
    plain = Console(file=io.StringIO(), color_system=None, width=200)
    render_terminal([(text, words)], plain)
    out = plain.file.getvalue()
    assert "New/NNP York/NNP ./. Ada/NNP\n" in out  # a word the text joins to the one before is spaced apart
    assert "(1 document, 4 words)" in out and "labels: . 1  NNP 3" in out
    # a span task's words: O words without a tag, so that the entities stand out
    span = [Word(0, 3, "B-LOC", 0.9, "New"), Word(4, 8, "I-LOC", 0.8, "York"), Word(8, 9, "O", 0.99, "."),
            Word(10, 13, "B-PER", 0.7, "Ada")]
    plain = Console(file=io.StringIO(), color_system=None, width=200)
    render_terminal([(text, span)], plain)
    assert "New/B-LOC York/I-LOC . Ada/B-PER\n" in plain.file.getvalue()
    colour = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=200)
    render_terminal([(text, span)], colour)
    assert "255;149;97" in colour.file.getvalue()  # B-LOC and I-LOC in LOC's colour, #ff9561
    page = render_html([(text, words), ('<b>', [Word(0, 3, "SYM", 0.5, "<b>")])])
    assert page.count('<span class="word"') == 5 and '<span class="tag"' in page
    assert "&lt;b&gt;" in page and "<b>" not in page.split("<body>", 1)[1]
    assert "2 documents, 5 words" in page


def test_show_tags_words_of_a_tag_task_and_reads_them_back(bert_export, tmp_path, corpus_jsonl):
    pos = _pos_model(bert_export, tmp_path)
    words = Tagger.load(pos).tag(TEXTS)
    res = invoke("show", corpus_jsonl, "--model", pos, "--n", len(TEXTS))
    assert res.exit_code == 0, res.output
    w = words[0][0]
    assert f"{w.text}/{w.label}" in res.stdout
    assert f"({len(TEXTS)} documents, {sum(map(len, words))} words)" in res.stdout
    for suffix in (".parquet", ".jsonl"):
        out = tmp_path / f"words{suffix}"
        assert invoke("run", corpus_jsonl, "-o", out, "--model", pos, "-q").exit_code == 0
        shown = invoke("show", "--entities", out, "--input", corpus_jsonl, "--n", len(TEXTS))
        assert shown.exit_code == 0, shown.output
        assert shown.stdout == res.stdout


def test_show_tokens_level_and_pre_tokenized_rows(bert_export, tmp_path):
    res = invoke("show", "-", "--model", bert_export, "--level", "tokens", input=json.dumps({"text": TEXTS[0]}) + "\n")
    assert res.exit_code == 0, res.output
    toks = Tagger.load(bert_export, level="tokens").tag_text(TEXTS[0])
    assert f"[{toks[0].text} {toks[0].label}]" in res.stdout and "tokens)" in res.stdout
    pos = _pos_model(bert_export, tmp_path)
    src = tmp_path / "tokens.jsonl"
    src.write_text(json.dumps({"tokens": ["New", "York", "is", "big", "."]}) + "\n")
    res = invoke("show", src, "--model", pos, "--tokens-column", "tokens")
    assert res.exit_code == 0, res.output
    (row,) = Tagger.load(pos).tag_pretokenized([["New", "York", "is", "big", "."]])
    expected = " ".join(f"{t}/{tag}" for t, tag in zip(["New", "York", "is", "big", "."], row.tags, strict=True))
    assert expected in res.stdout
    out = tmp_path / "tags.parquet"
    assert invoke("run", src, "-o", out, "--model", pos, "--tokens-column", "tokens", "-q").exit_code == 0
    shown = invoke("show", "--entities", out, "--input", src, "--tokens-column", "tokens")
    assert shown.exit_code == 0 and shown.stdout == res.stdout, shown.output


def test_lone_surrogates_are_shown_as_the_tagger_read_them(tmp_path, bert_export):
    # a JSONL "\ud800" escape is a lone surrogate, which stdout cannot encode: shown as U+FFFD, one for one
    texts = tmp_path / "t.jsonl"
    texts.write_text('{"text": "lone \\ud800 surrogate in Paris"}\n')
    tokens = tmp_path / "k.jsonl"
    tokens.write_text('{"tokens": ["lone", "\\ud800x", "in", "Paris"]}\n')
    for args in ([texts], [tokens, "--tokens-column", "tokens"], [texts, "--html", tmp_path / "p.html"]):
        proc = subprocess.run([sys.executable, "-m", "fasttag", "show", *map(str, args), "--model", str(bert_export)],
                              capture_output=True, text=True, encoding="utf-8", env={**os.environ, "NO_COLOR": "1"})
        assert proc.returncode == 0, proc.stderr
        shown = proc.stdout if "--html" not in args else (tmp_path / "p.html").read_text(encoding="utf-8")
        assert "\ufffd" in shown and "Error" not in proc.stderr
