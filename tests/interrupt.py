"""A progress callback that interrupts a run after N chunks, as Ctrl-C would (the resume tests share it)."""


def stop_after(chunks: int):
    seen = [0]

    def progress(rows, tokens):
        seen[0] += 1
        if seen[0] == chunks:
            raise KeyboardInterrupt

    return progress
