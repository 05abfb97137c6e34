"""Progress of the data-prep steps that can take minutes: a tqdm bar with its rate and ETA on
a terminal, else a plain line every ``PROGRESS_EVERY`` seconds (environment, default 30) for
a log; and at the end one summary line: lines in, lines kept, time."""
import os
import sys
import time
from typing import Callable, Optional


def count_lines(path) -> int:
    """Newline-terminated lines (a last line without one counts too)."""
    n, last = 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


class Progress:
    def __init__(self, what: str, total: Optional[int] = None, log: Optional[Callable[[str], None]] = None,
                 unit: str = "lines"):
        self.what, self.total, self.unit = what, total, unit
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.done, self.start = 0, time.time()
        self.every = float(os.environ.get("PROGRESS_EVERY", 30))
        self.last = self.start
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=what, unit=f" {unit}", unit_scale=True, file=sys.stderr, leave=False)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.time()
        if now - self.last >= self.every:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            eta = f", ETA {(self.total - self.done) / rate:.0f} s" if self.total and rate else ""
            of = f"/{self.total:,}" if self.total else ""
            self.log(f"[{self.what}] {self.done:,}{of} {self.unit}, {rate:,.0f} {self.unit}/s{eta}")

    def close(self, kept: Optional[int] = None, detail: str = "") -> None:
        if self.bar is not None:
            self.bar.close()
        n = self.done if self.done or self.total is None else self.total
        parts = [f"{n:,} {self.unit} in"] if n else []
        if kept is not None:
            parts.append(f"{kept:,} kept")
        parts.append(f"{time.time() - self.start:.1f} s")
        if detail:
            parts.append(detail)
        self.log(f"[{self.what}] done: " + ", ".join(parts))
