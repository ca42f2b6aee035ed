"""Rebuild the committed test fixtures: tests/fixtures/tiny-bert, the fast lane's model.

    python tests/make_fixtures.py            # needs the train extra (torch, transformers, optimum)

The tiny BERT checkpoint of tests/tiny_models.py (random weights, seed 0, a WordPiece vocabulary
of 400 trained on tests/corpus.py's sentences) is built in a temporary folder named `bert-ckpt`,
as conftest's `checkpoint_factory("bert")` names it, and exported with fasttag's own
`fasttag.export.export` (fp32, validated against PyTorch). The export is what the fast lane's
`bert_export` fixture returns, so tests that need only a model run without torch.
`tests/test_fixtures.py` (slow lane) checks that this script still builds the same model.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import TINY_BERT, build_checkpoint  # noqa: E402


def build_tiny_bert(out: Path = TINY_BERT) -> Path:
    """Build the tiny BERT checkpoint and export it to `out` (replacing what is there)."""
    from fasttag.export import export

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = build_checkpoint("bert", Path(tmp) / "bert-ckpt")
        export(str(checkpoint), out, precision="fp32", overwrite=True, log=lambda m: None)
    return out


def main() -> None:
    out = build_tiny_bert()
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out}: {', '.join(sorted(p.name for p in out.iterdir()))} ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(__doc__)
    main()
