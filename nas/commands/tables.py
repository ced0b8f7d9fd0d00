"""Plain-text tables for the commands' output."""


def table(header: tuple, rows: list[tuple]) -> str:
    """Plain right-aligned text table."""
    cells = [tuple(map(str, header))] + [tuple(map(str, r)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells)
