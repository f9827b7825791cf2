"""Plain-text tables for the terminal and for log files."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["format_table"]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Align ``rows`` under ``headers``: text to the left, numbers to the right.

    >>> print(format_table(["name", "ns"], [["a", 1], ["bb", 22]]))
    name  ns
    ----  --
    a      1
    bb    22
    """
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [
        max(len(header), *(len(row[column]) for row in cells))
        for column, header in enumerate(headers)
    ]
    numeric = [
        all(_is_number(row[column]) for row in rows if row[column] != "")
        for column in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    rule = ["-" * width for width in widths]
    return "\n".join([line(list(headers)), line(rule), *(line(row) for row in cells)])


def _is_number(value: object) -> bool:
    if isinstance(value, (int, float)):
        return True
    text = str(value).replace(",", "").rstrip("x%").strip()
    try:
        float(text)
    except ValueError:
        return False
    return True
