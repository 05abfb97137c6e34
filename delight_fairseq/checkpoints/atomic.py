"""Files written whole or not at all: a process killed while writing leaves the old file (or none)."""
import os
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def written_whole(path) -> Iterator[str]:
    """Yields a temporary name beside ``path`` to write to; it is renamed over ``path`` when the
    block ends, or removed if the block raises."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
