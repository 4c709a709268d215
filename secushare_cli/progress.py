"""Progress on stderr, only when stderr is a terminal."""

from __future__ import annotations

import sys
import time


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """``update(done)`` redraws one line at most every 0.2 s; ``finish()`` ends it."""

    def __init__(self, label: str, total: int, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.label = label if len(label) <= 40 else label[:39] + "…"
        self.total = total
        self.started = time.monotonic()
        self.drawn = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.drawn < 0.2 and done < self.total):
            return
        self.drawn = now
        elapsed = max(now - self.started, 1e-6)
        speed = done / elapsed
        percent = 100 * done / self.total if self.total else 100
        left = (self.total - done) / speed if speed > 0 else 0
        self.stream.write(
            f"\r{self.label}: {percent:5.1f}% of {human_size(self.total)}, "
            f"{human_size(speed)}/s, {duration(left)} left \x1b[K"
        )
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.update(self.total)
            self.stream.write("\n")
            self.stream.flush()
