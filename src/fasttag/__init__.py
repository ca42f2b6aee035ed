"""fasttag: high-throughput batch tagging for token classification on ONNX Runtime.

The run path (this package's import, ``Tagger`` and ``fasttag run``) never imports torch or
transformers; training and export do, lazily.
"""

from fasttag.entities import Entity
from fasttag.errors import FasttagError, InputError, ModelError, UsageError

__version__ = "0.1.0"

__all__ = ["EngineOptions", "Entity", "FasttagError", "InputError", "ModelError", "OutputOptions", "Tagger",
           "UsageError", "__version__"]


def __getattr__(name: str):
    # Tagger pulls in onnxruntime; keep `import fasttag` cheap until it is asked for.
    if name == "Tagger":
        from fasttag.tagger import Tagger

        return Tagger
    if name in ("EngineOptions", "OutputOptions"):
        from fasttag import options

        return getattr(options, name)
    raise AttributeError(name)
