"""Staff-written tag patterns (include, exclude, immutable): compiled within bounds, matched in bounded time.

Patterns use Python's regular-expression syntax and are run by the `regex` package, whose
matcher takes a `timeout=`. Not google-re2: RE2 refuses lookarounds and backreferences,
which patterns written for Python's `re` may use; refusing them would break stored settings.

Two bounds, because `regex` leaves both open:
- Compiling. `a{4294967294}` makes the C compiler unroll four billion steps (gigabytes, then
  MemoryError); `(` x 5000 exhausts Python's recursion. A pattern is parsed first, its size
  with every repeat unrolled is counted on the parse, and only then is it compiled.
- Matching. `^(a|aa)+$` against 128 characters backtracks for longer than the universe has
  existed; every match is cut off after MATCH_TIMEOUT.

Contract for callers that match (the poll, history/polling.py; the pin check): `search` and
`fullmatch` return a bool or raise PatternError (a ValueError): PatternTimeout when one tag took
too long, InvalidPattern when a stored pattern no longer compiles, PatternError itself for anything
else the engine raises. Its text names the pattern (and, but for InvalidPattern, the tag): report
that tag as failed with that text and go on with the other tags.
"""

import functools

import regex
from regex import _regex_core

from catalog.text import quoted_with_length

# The longest pattern accepted: the max_length of Repository's pattern fields.
MAX_PATTERN_LENGTH = 500

# How many steps a pattern may compile to once every repeat is unrolled (`(?:ab){10}` is about 30).
# A tag is at most 128 characters, so no useful pattern comes near (`[0-9a-f]{64}` is ~260);
# at this size the costliest patterns measured compile in ~15 ms to ~1-2 MB, so even
# COMPILED_CACHE_SIZE of them stay small. Unbounded, a{500000} took 0.16 s and 143 MB to
# compile and a{10000000} 1.8 GB.
MAX_COMPILED_STEPS = 2_000
# ... except a set of characters under full case folding, `(?fi)[\w-]`: regex lists every
# character that folds into it, up to ~28 KB where a plain step is ~0.5 KB: it counts this much.
FULL_CASE_SET_STEPS = 50

# Seconds one match (one tag against one pattern) may take. A sane tag pattern matches a
# 128-character tag in microseconds, so only a backtracking pattern ever gets near. regex counts
# CPU time, so on a loaded machine the wall time can be a few times longer; the poll's own
# deadline (history/polling.py) bounds a poll of 10 000 tags that all time out.
MATCH_TIMEOUT = 0.05

# Distinct patterns kept compiled: each repository has up to three, and most share them.
COMPILED_CACHE_SIZE = 256

# Nodes that stand for a set of characters (a one-range set is parsed to its Range).
_FULL_CASE_SET_KINDS = (_regex_core.SetBase, _regex_core.Range, _regex_core.Property)


class PatternError(ValueError):
    """A tag pattern could not be applied; the text says which pattern and why."""


class InvalidPattern(PatternError):
    """The pattern is refused: not valid syntax, too long, too large once compiled, nested too deeply."""


class PatternTimeout(PatternError):
    """Matching one tag took longer than MATCH_TIMEOUT: the pattern backtracks catastrophically."""

    def __init__(self, pattern: str, tag: str):
        self.pattern, self.tag = pattern, tag
        super().__init__(
            f"the pattern {quoted_with_length(pattern)} took more than {MATCH_TIMEOUT * 1000:.0f} ms "
            f"on the tag {quoted_with_length(tag)}; simplify it (nested repeats such as (a+)+ backtrack "
            "without end)"
        )


def check(pattern: str) -> None:
    """InvalidPattern unless `pattern` can be compiled and stored; the compiled form is kept."""
    compiled(pattern)


def search(pattern: str, tag: str) -> bool:
    """Does `pattern` occur in `tag` (re.search semantics)? PatternError as the module says."""
    return _run(compiled(pattern).search, pattern, tag)


def fullmatch(pattern: str, tag: str) -> bool:
    """Does `pattern` match the whole `tag` (re.fullmatch semantics)? PatternError as the module says."""
    return _run(compiled(pattern).fullmatch, pattern, tag)


def _run(method, pattern: str, tag: str) -> bool:
    if not isinstance(tag, str):
        raise PatternError(f"the tag {tag!r:.80} is not text")
    try:
        # concurrent=True releases the GIL while matching: a slow match does not stall the poll's
        # request threads or the web server's other threads for its 50 ms.
        return method(tag, concurrent=True, timeout=MATCH_TIMEOUT) is not None
    except TimeoutError:
        raise PatternTimeout(pattern, tag) from None
    except Exception as error:  # none seen in fuzzing; still this tag's failure, not the poll's
        message = (
            f"the pattern {quoted_with_length(pattern)} failed on the tag {quoted_with_length(tag)}: "
            f"{error!r:.200}"
        )
        raise PatternError(message) from None


def compiled(pattern: str) -> regex.Pattern:
    """The compiled pattern; InvalidPattern says why not. Refusals are cached as well as successes:
    a stored pattern that no longer compiles is tried against every tag of every poll."""
    if not isinstance(pattern, str):
        raise InvalidPattern(f"a pattern is text, not {type(pattern).__name__}")
    outcome = _compile(pattern)
    if isinstance(outcome, str):
        # A fresh exception each time: re-raising one cached instance would grow its traceback.
        raise InvalidPattern(outcome)
    return outcome


@functools.lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _compile(pattern: str) -> regex.Pattern | str:
    """The compiled pattern, or why it is refused."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"longer than {MAX_PATTERN_LENGTH} characters ({len(pattern)})"
    if "\x00" in pattern or not _is_utf8(pattern):
        # Neither can be stored (PostgreSQL text refuses NUL; a lone surrogate has no UTF-8), and
        # no tag contains one; `\x00` written as an escape is fine.
        return "contains a NUL or an unpaired surrogate character; write it as an escape"
    try:
        steps = _compiled_steps(pattern)
        if steps > MAX_COMPILED_STEPS:
            return (
                f"its repeats are too large: compiled, they unroll to {_count(steps)} steps, at most "
                f"{MAX_COMPILED_STEPS:,}; lower the {{n}} counts or nest fewer repeats (a tag has at "
                "most 128 characters)"
            )
        # cache_pattern=False: this module's cache is the bounded one; regex's own keeps 500.
        return regex.compile(pattern, cache_pattern=False)
    except regex.error as error:
        return f"not a valid regular expression: {error}"
    except RecursionError:
        return "not a valid regular expression: parentheses nested too deeply"
    except MemoryError:
        return "not a valid regular expression: too large to compile"
    except Exception as error:  # regex also raises ValueError, OverflowError, ...: all mean "refused"
        return f"not a valid regular expression: {type(error).__name__}: {str(error)[:200]}"


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _count(steps: int) -> str:
    return f"{steps:,}" if steps < 10**15 else "more than 10^15"


def _compiled_steps(pattern: str) -> int:
    """The size of `pattern` with every repeat unrolled as regex's C compiler unrolls it, counted on
    regex's own parse: the unrolled size is what compiling costs in time and memory.

    regex's parser is internal (regex._regex_core), so this mirrors regex._main._compile's first
    step; a regex upgrade that changes it fails tests/catalog/test_patterns.py rather than silently
    skipping the bound. Counting on the parse, not on the text, follows regex's own reading of the
    pattern: verbose-mode comments inside `{1#}\\n0}`, nested sets and flags cannot hide a count.
    """
    global_flags = 0
    for _attempt in range(3):  # a global flag found mid-pattern: parse again with it, as regex does
        source = _regex_core.Source(pattern)
        info = _regex_core.Info(global_flags, source.char_type, {})
        info.guess_encoding = _regex_core.UNICODE
        source.ignore_space = bool(info.flags & _regex_core.VERBOSE)
        try:
            parsed = _regex_core._parse_pattern(source, info)
        except _regex_core._UnscopedFlagSet:
            global_flags = info.global_flags
            continue
        return _steps(parsed, set())
    raise regex.error("inline flags that cannot be settled")


def _steps(node, on_path: set[int]) -> int:
    """Steps of one parsed node and everything under it, each repeat unrolled.

    Walks every attribute that holds nodes, so node kinds this does not name are counted too."""
    if id(node) in on_path:  # group calls may refer back; a reference compiles to one step
        return 1
    on_path.add(id(node))
    inner = 0
    for name, value in vars(node).items():
        if name == "_key":  # the node's identity for comparisons, made of the same children
            continue
        for child in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(child, _regex_core.RegexBase):
                inner += _steps(child, on_path)
        if inner > MAX_COMPILED_STEPS:  # refused already: stop before the numbers grow
            break
    on_path.discard(id(node))
    characters = getattr(node, "characters", None)
    own = 1 + (len(characters) if isinstance(characters, (list, tuple, str)) else 0)
    if isinstance(node, _FULL_CASE_SET_KINDS) and node.case_flags == _regex_core.FULLIGNORECASE:
        own = FULL_CASE_SET_STEPS
    minimum = getattr(node, "min_count", None)
    if isinstance(minimum, int) and minimum > 0:
        # regex unrolls a repeat's minimum and keeps one more copy for the rest: `x{2}` compiles
        # x three times, `x+` twice, so nested `((a)+)+` doubles per level; `x*`, `x?` once.
        inner *= minimum + 1
    return own + inner
