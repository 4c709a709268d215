"""The one table ``make bench`` prints."""

import math
import statistics
from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass
class Row:
    what: str  # what was compared, and on which sizes
    measured: str  # SecuShare's figure
    baseline: str  # what it is held against
    result: str  # the ratio (or the figure the target is about)
    target: str
    ok: bool | None  # None: not measured

    @classmethod
    def not_measured(cls, what: str, target: str, why: str) -> "Row":
        return cls(f"{what}: not measured, {why}", "-", "-", "not measured", target, None)


def rate(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:,.0f} MB/s"


def sizes(size: int) -> str:
    return f"{size / MIB:,.0f} MiB" if size >= MIB else f"{size / 1024:,.0f} KiB"


def ratio(value: float) -> str:
    """Two decimals, rounded down: a ratio shown as the target has reached it."""
    return f"{math.floor(value * 100) / 100:.2f}"


def median(values) -> float:
    return statistics.median(values)


def render(rows: list[Row], header: str) -> str:
    """Short columns first; what was measured, with its sizes, last and unpadded."""
    columns = ("result", "target", "", "SecuShare", "baseline", "what (sizes)")
    cells = [
        (
            r.result,
            r.target,
            {True: "ok", False: "MISSED", None: "-"}[r.ok],
            r.measured,
            r.baseline,
            r.what,
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [columns, *cells]) for i in range(len(columns) - 1)]

    def line(values):
        padded = [v.ljust(w) for v, w in zip(values, widths, strict=False)]
        return "  ".join([*padded, values[-1]]).rstrip()

    out = [header, "", line(columns), line(["-" * w for w in widths] + ["-" * 12])]
    out += [line(c) for c in cells]
    return "\n".join(out)
