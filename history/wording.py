"""Small helpers for the words pages, the API and polls write about counts."""


def plural(count: int, noun: str) -> str:
    """`1 build`, `3 builds`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
