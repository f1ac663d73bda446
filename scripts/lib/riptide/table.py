"""Markdown tables and their cells."""


def fmt(v, digits=0):
    """1,234,567 (thousands separated, `digits` decimals), or "n/a" for None."""
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}"


def times(a, b, digits=2):
    """a / b as "1.23×", or "n/a" when either is missing or zero."""
    return f"{a / b:.{digits}f}×" if a and b else "n/a"


def markdown(header, rows):
    """Lines of a markdown table: header, separator, one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def print_table(header, rows):
    print("\n".join(markdown(header, rows)))
