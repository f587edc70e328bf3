"""Staff tag patterns are refused with a clear message unless they compile cheaply, and are matched
within a time bound: no pattern can hang a worker, exhaust its memory or turn into a 500."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from catalog import patterns
from catalog.models import Repository, validate_regex
from catalog.tags import classify

A = "a" * 127  # with one more character, the longest tag a registry accepts

# (pattern, what its refusal says). Each used to raise OverflowError or RecursionError (a 500),
# or to compile for seconds into gigabytes with the `regex` engine.
HOSTILE = [
    ("a{4294967295}", "repeat count too big"),
    ("a{4294967294}", "repeats are too large"),  # regex would unroll four billion steps
    ("a{10000000}", "repeats are too large"),  # 1.8 GB when compiled
    ("(ab){1000000,}", "repeats are too large"),
    ("(?:(?:a{100}){100}){100}", "repeats are too large"),
    ("(" * 12 + "a" + ")+" * 12, "repeats are too large"),  # each nested + doubles the compiled size
    ("(?x)a{1#}\n0#}\n0#}\n0#}\n0#}\n0}", "repeats are too large"),  # verbose comments hide a{100000}
    (r"(?fi)[\wa]{100}", "repeats are too large"),  # full case folding lists every folding character
    ("(" * 5000, "longer than 500 characters"),
    ("x" * 10_000, "longer than 500 characters"),
    ("x" * 501, "longer than 500 characters"),
    ("(" * 400, "not a valid regular expression"),
    ("\\", "bad escape"),
    ("\\q", "bad escape"),
    ("\\p{Nope}", "unknown property"),
    ("\\N{NO SUCH NAME}", "undefined character name"),
    ("[a-", "unterminated character set"),
    ("*", "nothing to repeat"),
    ("a{2,1}", "min repeat greater than max repeat"),
    ("(?P<a>x)(?P=b)", "unknown group"),
    ("\\L<names>", "undefined named list"),
    ("(?(9)a|b)", "invalid group reference"),
    ("(?V0V1)a", "mutually incompatible"),  # a ValueError, not regex.error
    ("(?aL)a", "mutually incompatible"),
    ("a\x00b", "NUL"),  # PostgreSQL cannot store it
    ("\udcff", "unpaired surrogate"),  # what a command-line argument of invalid UTF-8 becomes
]

# (pattern, tag) pairs that backtrack catastrophically in regex (whose guards defuse many of the
# classic ones). With Python's re each hangs a worker for longer than the universe's age.
CATASTROPHIC = [
    (r"^(a|aa)+$", A + "-"),
    (r"^(a|a)+$", A + "-"),
    (r"(a|a)+b", A + "-"),
    (r"^(?:a|aa)*$", A + "-"),
    (r"^([a-z0-9]|[a-z])+$", A + "-"),
    (r"^(\w|[a-z])*$", A + "-"),
    ("(" * 8 + "a" + ")+" * 8 + "$", A + "-"),
    (r"^(a|a?){100}$", A + "-"),
    (r"^(a+)(?:\1|a)*$", A + "-"),  # a backreference, which RE2 would not take at all
    (r"^(?:\d|\d\d)+$", "1" * 127 + "_"),
]

# Patterns people write for tags, with Python re syntax; each must mean what it meant with re.
WRITTEN = [
    r"^3\.",
    "rc",
    r".*-\d{12}",
    r"(?i)^LATEST$",
    r"^(?!.*-dev$)",
    r"(?<=-)alpine",
    r"^(\d+)\.\1$",
    r"(?P<major>\d+)\.(?P=major)",
    r"^\d{4}-\d{2}-\d{2}$",
    r"^[0-9a-f]{64}$",
    r"^(?:[0-9a-f]{2}){32}$",
    r"^v?\d+(\.\d+){0,2}$",
    r"(?x) ^3 \. \d+ $  # verbose",
    r"^\d{4}\.\d{2}\.\d{2}-[0-9a-f]{7}-(?:amd64|arm64)$",
    r"-(alpine|slim)(\d+(\.\d+)*)?$",
    r"^[^-]+$",
    r"\bwindows\b",
    "",
]
TAGS = ["3.14", "3.14-dev", "3.14.4-alpine3.21", "latest", "LATEST", "3.3", "v1.2.3", "2026-01-02",
        "nightly-202601021200", "a" * 64, "12" * 32, "1.2-windowsservercore", "slim",
        "2026.01.02-abcdef0-amd64", A + "-"]  # fmt: skip


def refusal(pattern: str) -> str:
    with pytest.raises(ValidationError) as caught:
        validate_regex(pattern)
    [message] = caught.value.messages
    return message


def test_compiling_hostile_patterns_stays_within_memory_and_time():
    """In a child process capped at 1 GiB: a pattern that escaped the bound would be killed there,
    not take the test run (or a worker) down with it."""
    script = (
        "import json, resource, sys, time\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from catalog import patterns\n"
        "out = {}\n"
        "for pattern in json.load(sys.stdin):\n"
        "    start = time.process_time()\n"
        "    try:\n"
        "        patterns.check(pattern)\n"
        "        outcome = 'accepted'\n"
        "    except patterns.InvalidPattern as error:\n"
        "        outcome = str(error)\n"
        "    out[pattern] = [outcome, time.process_time() - start]\n"
        "print(json.dumps(out))\n"
    )
    near_the_bound = [  # each just within MAX_COMPILED_STEPS
        "(?:(?:a|b|c|d){2}){67}", r"(?fi)[\wa]{37}", "(?:" * 99 + "a*" + ")*" * 99 + "b", "^(a|a?){284}$",
    ]  # fmt: skip
    table = [pattern for pattern, _ in HOSTILE] + near_the_bound
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(table),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outcomes = json.loads(result.stdout)
    for pattern, expected in HOSTILE:
        message, seconds = outcomes[pattern]
        assert expected in message, (pattern[:40], message)
        assert seconds < 1, (pattern[:40], seconds)
    for pattern in near_the_bound:
        assert outcomes[pattern][0] == "accepted" and outcomes[pattern][1] < 1, outcomes[pattern]


@pytest.mark.parametrize(("pattern", "expected"), HOSTILE, ids=lambda value: repr(value[:16]))
def test_a_hostile_pattern_is_refused_with_a_clear_message(pattern, expected):
    message = refusal(pattern)
    assert expected in message
    assert len(message) < 300, "quotes at most a clipped part of the pattern"


@pytest.mark.parametrize(("pattern", "expected"), HOSTILE, ids=lambda value: repr(value[:16]))
def test_a_stored_hostile_pattern_fails_the_tag_with_the_same_message(pattern, expected):
    """A pattern stored before these bounds existed (or by hand in the database) still cannot hang
    or crash a poll: matching raises InvalidPattern, a PatternError the poll reports per tag."""
    for repository, call in [
        (Repository(include_pattern=pattern), lambda repository: repository.wants_tag("3.14")),
        (Repository(exclude_pattern=pattern), lambda repository: repository.wants_tag("3.14")),
        (Repository(immutable_pattern=pattern), lambda repository: repository.is_immutable(classify("3.14"))),
    ]:
        with pytest.raises(patterns.InvalidPattern, match=re.escape(expected)):
            call(repository)


@pytest.mark.timeout(60)  # without the bound, the first of these never returns
@pytest.mark.parametrize(("pattern", "tag"), CATASTROPHIC, ids=lambda value: repr(value[:16]))
def test_a_backtracking_pattern_times_out_on_the_tag_and_says_which(pattern, tag):
    assert validate_regex(pattern) is None, "compiles fine: only matching is slow"
    for repository, call in [
        (Repository(include_pattern=pattern), lambda repository: repository.wants_tag(tag)),
        (Repository(exclude_pattern=pattern), lambda repository: repository.wants_tag(tag)),
        (Repository(immutable_pattern=pattern), lambda repository: repository.is_immutable(classify(tag))),
    ]:
        started = time.thread_time()
        with pytest.raises(patterns.PatternTimeout) as caught:
            call(repository)
        spent = time.thread_time() - started
        assert spent < 0.5, f"{spent:.2f} s of CPU for one tag"
        error = caught.value
        assert isinstance(error, ValueError) and isinstance(error, patterns.PatternError)
        assert (error.pattern, error.tag) == (pattern, tag)
        assert repr(pattern[:40]) in str(error) and repr(tag[:60]) in str(error)
        assert "(128 characters)" in str(error), "the tag is clipped"
        assert "took more than 50 ms" in str(error)


def test_a_long_pattern_is_clipped_in_the_timeout_message():
    pattern = "^(a|aa)+" + "(?:x|y)?" * 60 + "$"
    assert len(pattern) > 400
    with pytest.raises(patterns.PatternTimeout) as caught:
        patterns.search(pattern, A + "-")
    assert f"({len(pattern)} characters)" in str(caught.value)
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize("pattern", WRITTEN)
def test_patterns_written_for_python_re_match_as_they_did(pattern):
    validate_regex(pattern)
    for tag in TAGS:
        found, whole = bool(pattern and re.search(pattern, tag)), bool(pattern and re.fullmatch(pattern, tag))
        assert Repository(include_pattern=pattern).wants_tag(tag) is (not pattern or found)
        assert Repository(exclude_pattern=pattern).wants_tag(tag) is not found
        immutable = Repository(immutable_pattern=pattern).is_immutable(classify(tag))
        assert immutable is (classify(tag).is_immutable or whole)


def test_include_and_exclude_search_while_immutable_matches_in_full():
    repository = Repository(include_pattern="4", exclude_pattern="dev", immutable_pattern=r"3\.14")
    assert repository.wants_tag("3.14-alpine") and not repository.wants_tag("3.14-dev")
    assert not repository.wants_tag("3.13")
    assert repository.is_immutable(classify("3.14")) and not repository.is_immutable(classify("3.14-alpine"))


def test_a_tag_that_is_not_text_fails_as_a_pattern_error():
    with pytest.raises(patterns.PatternError, match="is not text"):
        Repository(include_pattern="a").wants_tag(None)


def test_an_unexpected_error_while_matching_fails_the_tag_only(monkeypatch):
    class Exploding:
        def search(self, tag, **options):
            raise MemoryError

    monkeypatch.setattr(patterns, "compiled", lambda pattern: Exploding())
    with pytest.raises(patterns.PatternError) as caught:
        Repository(include_pattern="x").wants_tag("3.14")
    assert str(caught.value) == "the pattern 'x' failed on the tag '3.14': MemoryError()"


def test_a_refused_pattern_raises_a_fresh_error_each_time():
    """Refusals are cached; re-raising one cached exception would chain every caller's frames."""
    errors = []
    for _ in range(3):
        with pytest.raises(patterns.InvalidPattern) as caught:
            patterns.search("(", "a")
        errors.append(caught.value)
    assert len({id(error) for error in errors}) == 3


# Text made of regex syntax, so that the examples are patterns more often than noise.
SYNTAX = st.sampled_from(
    ["(", ")", "(?:", "(?=", "(?!", "(?<=", "(?<!", "(?>", "(?P<n>", "(?P=n)", "(?1)", "(?R)", "[", "]",
     "[^", "^", "$", "-", ".", "|", "*", "+", "?", "{", "}", ",", "0", "1", "2", "9", "99999",
     "4294967294", "{4294967295}", "(" * 50, ")+" * 5, "(a|aa)+", "{2}", "{1,3}", "{3,}", "+?", "*+",
     "{e<=1}", "\\", "\\d", "\\w", "\\b", "\\1",
     "\\p{L}", "\\N{", "\\x{", "(?x)", "(?i)", "(?fi)", "(?V1)", "(?r)", "#", "\n", " ", "a", "b",
     "ß", "\x00", "\udcff"]
)  # fmt: skip
PATTERN_TEXT = st.one_of(st.lists(SYNTAX, max_size=60).map("".join), st.text(max_size=80))
TAG = st.one_of(
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True),
    st.sampled_from([A + "-", "a" * 128, "1" * 127 + "_", "ab" * 64]),
)
BOUNDED = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def accepted_or_empty(pattern: str) -> str:
    """The pattern if the watch command would store it, else no pattern: most random text is refused."""
    try:
        validate_regex(pattern)
    except ValidationError:
        return ""
    return pattern


@BOUNDED
@given(pattern=PATTERN_TEXT)
@example(pattern="a{4294967295}")
@example(pattern="(" * 5000)
@example(pattern="a\x00")
def test_any_text_is_accepted_or_refused_with_a_validation_error(pattern):
    try:
        validate_regex(pattern)
    except ValidationError as error:
        assert error.messages and all(message for message in error.messages)


@pytest.mark.timeout(300)  # without the time bound, the example below never returns
@BOUNDED
@given(include=PATTERN_TEXT, exclude=PATTERN_TEXT, immutable=PATTERN_TEXT, tag=TAG)
@example(include="", exclude="^(a|aa)+$", immutable="", tag=A + "-")
def test_an_accepted_pattern_answers_a_bool_or_times_out_quickly(include, exclude, immutable, tag):
    include, exclude, immutable = (accepted_or_empty(pattern) for pattern in (include, exclude, immutable))
    repository = Repository(include_pattern=include, exclude_pattern=exclude, immutable_pattern=immutable)
    for call in (lambda: repository.wants_tag(tag), lambda: repository.is_immutable(classify(tag))):
        started = time.thread_time()
        try:
            assert isinstance(call(), bool)
        except patterns.PatternTimeout as error:
            assert error.tag == tag
        # Two matches of at most MATCH_TIMEOUT each, with room for regex's coarse timer.
        assert time.thread_time() - started < 0.5
