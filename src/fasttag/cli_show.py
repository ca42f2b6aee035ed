"""`fasttag show`."""

from __future__ import annotations

import click
from click.core import ParameterSource

from fasttag.options import CLI_NAMES, DEFAULT_MAX_TEXT_BYTES, ON_ERROR, EngineOptions, engine_options


@click.command()
@click.argument("input", metavar="[INPUT]", required=False)
@click.option("-n", "--n", "n", type=click.IntRange(min=1), default=10, show_default=True,
              help="Show the first N documents.")
@click.option("--text-column", default="text", show_default=True, help="Column (or JSON field) holding the text.")
@click.option("--tokens-column", default=None, metavar="NAME",
              help="Show pre-tokenized rows: NAME holds each row's tokens (a list of strings), shown joined by spaces "
                   "with each token's tag (New/NNP York/NNP), as 'fasttag run --tokens-column' tags them.")
@click.option("--entities", "entities_path", default=None, metavar="OUTPUT",
              help="Show this output of 'fasttag run' (Parquet or JSONL) instead of running a model; the corpus "
                   "it tagged is INPUT or --input.")
@click.option("--input", "input_path", default=None, metavar="INPUT",
              help="With --entities: the corpus that 'fasttag run' tagged to make OUTPUT.")
@click.option("--on-error", type=click.Choice(ON_ERROR), default="stop", show_default=True,
              help="Bad JSONL lines in the corpus: stop, or skip them as 'fasttag run --on-error skip' did.")
@click.option("--max-text-bytes", type=click.IntRange(min=0), default=DEFAULT_MAX_TEXT_BYTES, show_default=True,
              metavar="N", help="A text longer than N bytes (UTF-8) is a bad row, as --on-error says (as 'fasttag run' "
                                "reads it: with --entities, give the run's value); 0: no limit.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None, metavar="PAGE.html",
              help="Write a self-contained HTML page (displaCy style) instead of printing to the terminal (never "
                   "over an input; an existing page only with --overwrite).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --html page.")
@engine_options
def show(input, n, text_column, tokens_column, entities_path, input_path, on_error, max_text_bytes, html_path,
         overwrite, engine_opts: EngineOptions):
    """Tag the first N documents of INPUT and show them with their entities highlighted.

    INPUT takes the same formats as 'fasttag run' (.parquet or a folder of them, .jsonl/.ndjson, optionally
    .gz, or - for JSONL on stdin). Entities are drawn on their label's colour, with a legend of the labels
    and their counts. Words (--level words, the default for a tag task such as part-of-speech) are shown
    with their tags, as tagged corpora write them: New/NNP York/NNP (a span task's words but O ones);
    tokens (--level tokens) like entities, with their full labels. With --entities OUTPUT --input INPUT,
    shows what an earlier 'fasttag run' wrote (at any level, or with --tokens-column),
    without loading a model: row i of OUTPUT belongs to row i of INPUT, and every entity's text must equal
    the input slice, else it stops with "OUTPUT does not belong to INPUT". If that run skipped bad lines
    or texts over --max-text-bytes (--on-error skip), pass the same options here, so that the rows line up
    the same way.

    \b
    Example:
      fasttag show corpus.jsonl --n 5 --model my-export
      fasttag show corpus.jsonl --model my-pos-export --level words
      fasttag show --entities entities.parquet --input corpus.parquet --html entities.html
    """
    ctx = click.get_current_context()
    if html_path:
        from fasttag.write import check_report_path

        check_report_path(html_path, "--html", overwrite, [input, input_path, entities_path])
    elif overwrite:
        raise click.UsageError("--overwrite applies to --html only")
    if entities_path is not None:
        if input is not None and input_path is not None:
            raise click.UsageError(f"give the corpus once: {input} or --input {input_path}")
        input_path = input_path if input_path is not None else input
        input = None
        if input_path is None:
            raise click.UsageError("--entities OUTPUT needs the corpus that 'fasttag run' tagged: --input INPUT")
        engine = [p.opts[-1] for p in ctx.command.params
                  if p.name in CLI_NAMES and ctx.get_parameter_source(p.name) is not ParameterSource.DEFAULT]
        if engine:
            raise click.UsageError(f"{', '.join(engine)}: --entities shows an existing output and runs no model")
        if entities_path == "-" and input_path == "-":
            raise click.UsageError("--entities and --input cannot both read stdin")
    else:
        if input_path is not None:
            raise click.UsageError(
                f"--input is for --entities; to tag a corpus, give it as INPUT: fasttag show {input_path}")
        if input is None:
            raise click.UsageError("missing INPUT (or --entities OUTPUT --input INPUT)")

    from fasttag.read import CorpusReader
    from fasttag.show import align, pretokenized_doc, read_entities, read_tags

    corpus = input_path if entities_path is not None else input
    texts = [t for chunk in CorpusReader(corpus, text_column, limit=n, on_error=on_error, tokens_column=tokens_column,
                                         max_text_bytes=max_text_bytes or None)
             for t in chunk.texts]
    if entities_path is not None and tokens_column:
        id_name, ids, tagged = read_tags(entities_path, n)
        docs = _pretokenized_docs(texts, tagged, entities_path, input_path)
        titles = [f"row {i}" if id_name in (None, "row") else f"row {i} · {id_name} {ids[i]}" for i in range(len(docs))]
        heading = f"{entities_path} on {input_path}"
    elif entities_path is not None:
        id_name, ids, rows = read_entities(entities_path, n, levels=("entities", "words", "tokens"))
        docs = align(texts, rows, output=entities_path, input=input_path, ids=ids, id_name=id_name)
        titles = [f"row {i}" if id_name in (None, "row") else f"row {i} · {id_name} {ids[i]}" for i in range(len(docs))]
        heading = f"{entities_path} on {input_path}"
    else:
        from fasttag.tagger import Tagger

        tagger = Tagger.load(options=engine_opts)
        if not html_path:  # on stderr: which model ran (the page's heading says it)
            click.echo(f"fasttag: {tagger.bundle.describe()} on {tagger.provider}", err=True)
        if tokens_column:
            docs = [pretokenized_doc(t, row) for t, row in zip(texts, tagger.tag_pretokenized(texts), strict=True)]
        else:
            from fasttag.tokenization import repair_surrogates

            texts = [t if isinstance(t, str) else None for t in texts]  # a number or list: no text, as run reads it
            # shown as the tagger read them (lone surrogates as U+FFFD, one for one): its entity texts are those
            shown = repair_surrogates([t or "" for t in texts])[0]
            docs = list(zip(shown, tagger.tag(texts), strict=True))
        titles = None
        heading = f"{input}: model {tagger.bundle.describe()}"
    _show(docs, titles, heading, html_path)


def _pretokenized_docs(token_lists, tagged, output, input):
    """Rows of a --tokens-column output paired with the corpus rows they tag (one tag per token, else they do not
    belong together)."""
    from fasttag.show import not_belonging, pretokenized_doc

    if len(token_lists) != len(tagged):
        raise not_belonging(output, input, f"within the first {max(len(token_lists), len(tagged))} rows, {output} "
                                           f"has {len(tagged)} and {input} has {len(token_lists)}")
    for i, (tokens, row) in enumerate(zip(token_lists, tagged, strict=True)):
        if len(tokens or ()) != len(row.tags):
            raise not_belonging(output, input, f"row {i} has {len(row.tags)} tags for {len(tokens or ())} tokens")
    return [pretokenized_doc(tokens, row) for tokens, row in zip(token_lists, tagged, strict=True)]


def _show(docs, titles, heading, html_path):
    from fasttag.show import drawn_entities, noun, plural, render_html, render_terminal

    if html_path:
        from fasttag.write import write_text_whole

        write_text_whole(html_path, render_html(docs, titles=titles, heading=heading))
        click.echo(f"wrote {html_path} ({plural(len(docs), 'document')}, {plural(drawn_entities(docs), noun(docs))})",
                   err=True)
        return
    from rich.console import Console

    render_terminal(docs, Console(highlight=False), titles=titles)
