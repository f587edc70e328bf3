"""How text from outside (registries, users' input) appears in messages: quoted, bounded, printable.

Used by catalog and by history (which depends on catalog, never the reverse).
"""


def quoted(value: object, limit: int = 80) -> str:
    """`value` as repr() shows it (control characters escaped, quotes around text), cut after
    `limit` characters: a hostile value cannot flood a message or a log."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def quoted_with_length(text: str, limit: int = 60) -> str:
    """`text` quoted as `quoted` does, and when cut, how long it was: for what a user wrote (a
    pattern, a tag it was matched against), where the length is the hint."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def clipped(text: str, limit: int = 160) -> str:
    """`text` as it is, at most `limit` characters (the last one an ellipsis when cut): for text
    already safe to show, such as a reason this program wrote around a registry's words."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def printable(text: str, limit: int = 120) -> str:
    """`text` (a registry-supplied URL, say) as printable ASCII without quotes, other characters
    as `?`, at most `limit` of them and then `...`."""
    clipped = "".join(c if " " <= c < "\x7f" else "?" for c in text[:limit])
    return clipped + ("..." if len(text) > limit else "")


def aligned(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows of a command's table as lines: columns two spaces apart, each padded to its widest cell
    but the last, which is free text (a name, a description) and never padded."""
    if not rows:
        return []
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return [
        "  ".join([cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]])
        for row in rows
    ]
