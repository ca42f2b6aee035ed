"""`fasttag eval`: scores of an exported model on labelled data (options only; see fasttag.evaluate)."""

from __future__ import annotations

import click
from click.core import ParameterSource

from fasttag.options import JOINS, MODES, SCHEMES, EngineOptions, engine_options


@click.command("eval")
@engine_options
@click.option("--data", required=True, type=click.Path(dir_okay=False),
              help="Labelled data: CoNLL columns, .jsonl(.gz) or .parquet with tokens and tags.")
@click.option("--end-to-end", is_flag=True,
              help="Score what 'fasttag run' returns on raw text: the words joined into texts (see --join and "
                   "--documents), tagged through the run path (--aggregation, --word-boundaries, windows); "
                   "entities (span tasks) scored as exact character spans, with a partial-overlap figure, or "
                   "words (tag tasks) as exact character spans with their tags.")
@click.option("--documents", default="sentences", show_default=True, metavar="sentences|docstart|N",
              help="With --end-to-end: a text per sentence, per -DOCSTART- document, or consecutive sentences "
                   "joined until a text has at least N words.")
@click.option("--join", type=click.Choice(JOINS), default="spaces", show_default=True,
              help="With --end-to-end: how the labelled words become text: each apart by a space, as they were "
                   "labelled, or natural, as text is written ('London.', 'said,', '(Reuters)', 'Germany's': no "
                   "space before closing punctuation and clitics, none after opening brackets, straight quotes "
                   "paired), which is what 'fasttag run' gets from real documents.")
@click.option("--mode", type=click.Choice(MODES), default="strict", show_default=True,
              help="Span tasks, word level: seqeval's strict mode in the model's scheme (IOB2, IOBES for BIOES, "
                   "BILOU), or its lenient default mode. Tag tasks are scored by word accuracy; --end-to-end by "
                   "exact character spans (refused with it).")
@click.option("--tag-column", metavar="INDEX|NAME",
              help="The tags: in CoNLL files a column index (1 = the second column, -1 = the last; default -1), "
                   "in JSONL/Parquet data a column name (default ner_tags), as 'fasttag train' reads them.")
@click.option("--labels", default=None, metavar="O,B-PER,...", help="Label list naming integer tags.")
@click.option("--scheme", type=click.Choice(SCHEMES), default="auto", show_default=True,
              help="Tag scheme of the data (auto detects it; none: a tag task). Span tags in another scheme than "
                   "the model's are converted to the model's (IOB2 data scores a BIOES model).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the figures to this JSON file (never --data; an existing one only with --overwrite).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file.")
@click.pass_context
def evaluate(ctx, engine_opts: EngineOptions, data, end_to_end, documents, join, mode, tag_column, labels, scheme,
             json_path, overwrite):
    """Scores of an exported model on labelled data, by its task.

    Span tasks (NER, chunking; IOB2, BIOES or BILOU models): entity-level precision, recall and F1,
    overall and per type. Tag tasks (POS): word accuracy, per-tag precision, recall and F1, and their
    macro average. By default, word level: each word's prediction is taken from its first sub-token,
    as 'fasttag train' does, so that for the same fp32 model and data the figure equals the one
    training reported. With --end-to-end, what 'fasttag run' returns on the same words as raw text,
    sentences or documents: its entities, or a tag task's words. Needs neither torch nor transformers
    (word-level span scores need the 'eval' extra: seqeval).

    \b
    Examples:
      fasttag eval --model my-export --data test.txt --json test-scores.json
      fasttag eval --model pos-export --data test.txt --tag-column 1
      fasttag eval --data test.txt --end-to-end --documents 300
    """
    from fasttag.errors import UsageError
    from fasttag.evaluate import evaluate as word_eval
    from fasttag.evaluate import evaluate_end_to_end, require_seqeval, write_json
    from fasttag.labelled import parse_labels
    from fasttag.metrics import format_scores_table, format_tag_table

    if ctx.get_parameter_source("level") == ParameterSource.COMMANDLINE:
        raise UsageError("--level: eval scores the model's own level (entities for a span task, words for a tag "
                         "task), at word level and --end-to-end alike")
    if not end_to_end:
        for name in ("aggregation", "word_boundaries", "documents", "join"):
            if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
                raise UsageError(f"--{name.replace('_', '-')} applies to --end-to-end scoring only "
                                 "(word-level scoring reads each word's first sub-token)")
    elif ctx.get_parameter_source("mode") == ParameterSource.COMMANDLINE:
        raise UsageError("--mode applies to word-level scoring (seqeval's modes); --end-to-end scores exact "
                         "character spans")
    if json_path:  # before any work: the data, a folder, an existing file, a missing folder
        from fasttag.write import check_report_path

        check_report_path(json_path, "--json", overwrite, [data])
    elif overwrite:
        raise UsageError("--overwrite applies to --json only")
    from fasttag.tagger import Tagger

    tagger = Tagger.load(options=engine_opts)
    task = tagger.bundle.task
    if task.kind == "tag" and ctx.get_parameter_source("mode") == ParameterSource.COMMANDLINE:
        raise UsageError("--mode applies to span tasks (entity scores); this model is a tag task, scored by word "
                         "accuracy")
    if not end_to_end and task.kind == "span":
        require_seqeval()  # word-level entity scoring needs seqeval; end-to-end and tag scoring do not
    if end_to_end:
        scores = evaluate_end_to_end(tagger, data, documents=documents, join=join, tag_column=tag_column,
                                     labels=parse_labels(labels), scheme=scheme)
    else:
        scores = word_eval(tagger, data, mode=mode, tag_column=tag_column, labels=parse_labels(labels), scheme=scheme)
    d = scores["data"]
    joined = "by spaces" if d.get("join") == "spaces" else "as text is written"
    n_texts = f"{d['texts']:,} text{'s' if d.get('texts') != 1 else ''}" if end_to_end else ""
    texts = f", {n_texts} ({d['documents']}, words joined {joined})" if end_to_end else ""
    click.echo(f"{data}: {d['sentences']:,} sentences, {d['words']:,} words ({d['scheme']}){texts}; "
               f"model {tagger.bundle.describe()}; {scores['seconds']:.1f}s", err=True)
    if end_to_end and d["documents"] == "docstart" and d["texts"] == 1 and d["sentences"] > 1:
        click.echo("note: the data has no -DOCSTART- line between its sentences: --documents docstart made the "
                   "whole file one text", err=True)
    if d["scheme"] == "iob1":  # I- starts entities in IOB1: each such tag is B- in IOB2, no repair
        click.echo("note: the data was read as IOB1 (I- tags start entities) and converted to IOB2", err=True)
    elif d["repaired_tags"]:
        n = d["repaired_tags"]
        click.echo(f"note: {n:,} I- tag{'s' if n != 1 else ''} that started an entity "
                   f"{'were' if n != 1 else 'was'} read as B- (IOB2)", err=True)
    if d.get("converted_to"):
        click.echo(f"note: the data's tags were converted to {d['converted_to'].upper()}, the model's scheme", err=True)
    if scores.get("labels_unknown_to_model"):
        click.echo(f"warning: the data has labels the model lacks: {', '.join(scores['labels_unknown_to_model'])}",
                   err=True)
    if end_to_end:
        what = "word" if task.kind == "tag" else "entity"
        title = (f"end-to-end {what} scores (exact character spans; --aggregation {engine_opts.aggregation}, "
                 f"--word-boundaries {engine_opts.word_boundaries})")
        if task.kind == "tag":
            click.echo(format_tag_table(scores, title=title))
            click.echo(f"word boundaries: {scores['boundaries']:.4f} of the gold words found whole")
        else:
            click.echo(format_scores_table(scores, title=title))
            p = scores["partial"]
            click.echo(f"partial overlap: precision {p['precision']:.4f}  recall {p['recall']:.4f}  f1 {p['f1']:.4f}")
    else:
        click.echo(format_tag_table(scores, title="tag scores (word level)") if task.kind == "tag"
                   else format_scores_table(scores, title=f"entity scores ({mode}, {task.scheme.upper()})"))
    if json_path:
        write_json(scores, json_path)
