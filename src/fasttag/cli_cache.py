"""`fasttag cache list` and `fasttag cache clear`: the exports fasttag made of checkpoints and hub models."""

from __future__ import annotations

import json

import click


@click.group("cache")
def cache_group() -> None:
    """List or remove the ONNX exports fasttag made of checkpoints and hub models.

    A transformers checkpoint folder or a hub model id given to --model is exported to ONNX once,
    into the cache ($FASTTAG_CACHE, else $XDG_CACHE_HOME/fasttag, else ~/.cache/fasttag), and later
    runs reuse the export. Each entry is one model at one precision.

    \b
    Example:
      fasttag cache list
      fasttag cache clear dslim/bert-base-NER
      fasttag cache clear --all
    """


@cache_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def list_command(as_json: bool) -> None:
    """List the cache's entries: key, source, precision, size and when each was made.

    \b
    Example:
      fasttag cache list
    """
    from fasttag import cache

    entries = cache.entries()
    rows = [{"key": e.key, "source": e.info.get("source"), "form": e.info.get("form"), "commit": e.info.get("commit"),
             "precision": e.info.get("precision"), "opset": e.info.get("opset"), "size": e.size(),
             "created": e.info.get("created"), "path": str(e.path)} for e in entries]
    unfinished = cache.leftovers()
    if as_json:
        click.echo(json.dumps({"cache": str(cache.exports_dir()), "entries": rows,
                               "unfinished": [{"path": str(p), "size": cache.leftover_size(p)} for p in unfinished]},
                              indent=2))
        return
    total = sum(e.size() for e in entries)
    if not rows:
        click.echo(f"{cache.exports_dir()}: no exports")
    else:
        click.echo(f"{cache.exports_dir()}: {len(rows)} export{'s' if len(rows) != 1 else ''}, {_mb(total)}")
        table = [("KEY", "SOURCE", "PRECISION", "SIZE", "CREATED")] + [
            (e.key, _source(e.info), str(e.info.get("precision")), _mb(e.size()),
             str(e.info.get("created") or "?").replace("T", " ")) for e in entries]
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for row in table:
            click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if unfinished:
        size = sum(cache.leftover_size(p) for p in unfinished)
        click.echo(f"plus {len(unfinished)} unfinished export{'s' if len(unfinished) != 1 else ''} ({_mb(size)}; "
                   "running now, or left by an interrupted run: 'fasttag cache clear --all' removes those not running)")


@cache_group.command("clear")
@click.argument("names", metavar="[KEY|SOURCE]...", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Remove every entry (and unfinished exports not running).")
def clear_command(names: tuple[str, ...], everything: bool) -> None:
    """Remove entries: by KEY (as 'fasttag cache list' shows it), by SOURCE (a hub id or a checkpoint folder:
    all its precisions), or --all.

    \b
    Example:
      fasttag cache clear dslim/bert-base-NER
      fasttag cache clear --all
    """
    from pathlib import Path

    from fasttag import cache
    from fasttag.errors import UsageError

    if everything and names:
        raise UsageError("give the entries to remove (KEY or SOURCE) or --all, not both")
    if not everything and not names:
        raise UsageError("give the entries to remove (KEY or SOURCE, see 'fasttag cache list'), or --all")
    if everything:
        doomed = cache.entries()
    else:
        # a folder given as it was to --model: its entries record its absolute path
        doomed = cache.find([str(Path(n).resolve()) if Path(n).is_dir() else n for n in names])
    freed = 0
    for entry in doomed:
        freed += entry.size()
        cache.remove(entry)
    left = 0
    if everything:
        for path in cache.leftovers():
            size = cache.leftover_size(path)
            if cache.remove_leftover(path):
                freed += size
            else:
                left += 1
    note = f"; {left} unfinished export{'s' if left != 1 else ''} still running, kept" if left else ""
    click.echo(f"removed {len(doomed)} export{'s' if len(doomed) != 1 else ''} ({_mb(freed)}) from "
               f"{cache.exports_dir()}{note}")


def _source(info: dict) -> str:
    source = str(info.get("source") or "?")
    return f"{source} @ {str(info['commit'])[:7]}" if info.get("commit") else source


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"
