"""`fasttag convert`."""

from __future__ import annotations

import click
from click.core import ParameterSource

from fasttag.convert import ALIGNMENTS, FORMATS, ConvertOptions
from fasttag.options import DEFAULT_MAX_TEXT_BYTES, ON_ERROR

# The options that apply to one format only, by parameter name: given with another --to, they are refused.
FORMAT_OPTIONS = {"lang": "spacy", "alignment": "spacy", "docs_per_file": "spacy", "from_name": "label-studio",
                  "to_name": "label-studio", "model_version": "label-studio", "docstart": "conll"}


@click.command()
@click.argument("output", metavar="OUTPUT")
@click.option("--input", "corpus", required=True, metavar="CORPUS",
              help="The corpus that 'fasttag run' tagged to make OUTPUT (any format run reads).")
@click.option("--to", "format", required=True, type=click.Choice(FORMATS), help="The format to write.")
@click.option("-o", "--dest", "dest", required=True, metavar="DEST",
              help="Where to write: a .spacy file or a folder (spacy), .json (label-studio), .jsonl (prodigy), "
                   ".conll/.txt/.iob/.bio/.tsv, optionally .gz (conll), a folder (brat).")
@click.option("--text-column", default="text", show_default=True, help="Column (or JSON field) holding the text.")
@click.option("--on-error", type=click.Choice(ON_ERROR), default="stop", show_default=True,
              help="Bad JSONL lines in the corpus: stop, or skip them as 'fasttag run --on-error skip' did.")
@click.option("--max-text-bytes", type=click.IntRange(min=0), default=DEFAULT_MAX_TEXT_BYTES, show_default=True,
              metavar="N", help="As the run's --max-text-bytes: with --on-error skip, the texts it skipped as too long "
                                "are skipped here too; 0: no limit.")
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help="As the run's --limit: CORPUS's first N rows only.")
@click.option("--overwrite", is_flag=True, help="Replace an existing DEST.")
@click.option("--lang", default="xx", show_default=True,
              help="[spacy] Language of the blank spaCy pipeline that tokenizes the text (xx: multi-language).")
@click.option("--alignment", type=click.Choice(ALIGNMENTS), default="expand", show_default=True,
              help="[spacy] Entities off spaCy's token boundaries: expand to the tokens they touch, contract to "
                   "the tokens inside them, or drop them (strict); counted in the summary.")
@click.option("--docs-per-file", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="[spacy] With a folder DEST: documents per .spacy file (memory holds one file's worth).")
@click.option("--from-name", default="label", show_default=True,
              help="[label-studio] Name of the <Labels> tag in the labeling config.")
@click.option("--to-name", default="text", show_default=True,
              help="[label-studio] Name of the <Text> tag in the labeling config.")
@click.option("--model-version", default="fasttag", show_default=True,
              help="[label-studio] The predictions' model_version (how Label Studio tells models apart).")
@click.option("--docstart", is_flag=True, help="[conll] A -DOCSTART- line before each document.")
@click.option("--quiet", "-q", is_flag=True, help="No summary line.")
def convert(output, corpus, format, dest, text_column, on_error, max_text_bytes, limit, overwrite, lang, alignment,
            docs_per_file, from_name, to_name, model_version, docstart, quiet):
    """Convert OUTPUT of 'fasttag run' on CORPUS into the files spaCy, Label Studio, Prodigy, CoNLL tools or
    brat read, without loading a model.

    OUTPUT is run's entities level, its words level (--level words: a span task's entities are the
    B-/I- runs of the word tags; a tag task's words are written with their tags) or its tokens level
    (the runs of consecutive sub-tokens, as --aggregation simple groups them). Row i of OUTPUT belongs
    to row i of CORPUS, and every entity's (word's) text must equal the input slice, else it stops with
    "OUTPUT does not belong to CORPUS", as 'fasttag show --entities' does. Read CORPUS as the run did: the
    same --on-error, --max-text-bytes and --limit. Both are read chunk by chunk;
    DEST appears only when complete (an existing one is replaced only with --overwrite).

    \b
    spacy         a DocBin whose doc.ents are the entities (needs the 'spacy' extra)
    label-studio  tasks with pre-annotations (predictions) for Label Studio's import
    prodigy       JSONL tasks with text, tokens and spans for ner.manual
    conll         token<TAB>IOB2 tag lines, read back by 'fasttag train' and 'fasttag eval'
    brat          a .txt and .ann pair per document, named after the row id

    \b
    Example:
      fasttag convert entities.jsonl --input corpus.jsonl --to spacy -o train.spacy
      fasttag convert entities.parquet --input corpus.parquet --to label-studio -o tasks.json --from-name ner
      fasttag convert entities.jsonl --input corpus.jsonl --to conll -o silver.conll --docstart
    """
    ctx = click.get_current_context()
    wrong = [p.opts[-1] for p in ctx.command.params if FORMAT_OPTIONS.get(p.name or "", format) != format
             and ctx.get_parameter_source(p.name or "") is not ParameterSource.DEFAULT]
    if wrong:
        raise click.UsageError(f"{', '.join(wrong)}: not an option of --to {format}")

    from fasttag.convert import convert as convert_files

    options = ConvertOptions(lang=lang, alignment=alignment, docs_per_file=docs_per_file, from_name=from_name,
                             to_name=to_name, model_version=model_version, docstart=docstart)
    stats = convert_files(output, corpus, format, dest, options, text_column=text_column, on_error=on_error,
                          overwrite=overwrite, max_text_bytes=max_text_bytes or None, limit=limit)
    if not quiet:
        click.echo(f"fasttag: {stats.summary()}", err=True)
