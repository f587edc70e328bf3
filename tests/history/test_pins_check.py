"""The pins CI gate: `manage.py pins check FILE` exits 0 when every pin passes, 1 when one fails, 2
when the file cannot be checked; `GET /api/v1/pins/check` answers the same body whatever the verdict.

Pins are checked against the rows test_pins' Scene writes (docker.io/library/python as a vendor
publishes it), so each verdict class is the pin check's own.
"""

import io
import json

import pytest
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from hypothesis import given
from hypothesis import strategies as st

from history.management.commands.pins import MAX_BYTES
from history.pin_gate import Policy, refusal
from history.pins import MAX_INPUT, MAX_REFERENCES, PinResult
from tagledger.tokens.models import ApiToken
from tests.history.test_pins import ZERO, Scene, values

REFERENCE = "docker.io/library/python"


@pytest.fixture
def scene(db) -> Scene:
    return Scene()


@pytest.fixture
def pins(scene) -> dict[str, str]:
    """One pin of each verdict class, as lines of a file."""
    given = values(scene)
    return {
        "current": f"python:3.14.4@{given['current']}",
        "two behind": f"python:3.14.4@{given['observed']}",
        "ahead": f"python:3.14.4@{given['ahead']}",
        "another version's build": f"python:3.14.4@{given['b3131']}",
        "unknown digest": f"python:3.14.4@{ZERO}",
        "unwatched repository": f"nowhere.example/app:1.0@{ZERO}",
        "unreadable": "python:${PYTHON_VERSION}",
        "unpinned": "python:3.14.4",
        "inactive version": f"python:3.12.9@{given['b3129']}",
    }


def run(*args: str, stdin=None) -> tuple[int, str, str]:
    """`manage.py pins check …` in-process: (exit code, stdout, the error message)."""
    out = io.StringIO()
    try:
        call_command("pins", "check", *args, stdout=out, stderr=io.StringIO(), stdin=stdin)
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), ""


def write(tmp_path, text: str | bytes, name: str = "Dockerfile") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


# (pin, options, exit code): each verdict class under the default policy and the option that changes it
VERDICTS = [
    ("current", [], 0),
    ("current", ["--fail-on-inactive"], 0),
    ("two behind", [], 1),
    ("two behind", ["--max-behind", "1"], 1),
    ("two behind", ["--max-behind", "2"], 0),
    ("ahead", [], 0),
    ("another version's build", [], 1),
    ("another version's build", ["--max-behind", "100", "--allow-unknown", "--allow-unpinned"], 1),
    ("unknown digest", [], 1),
    ("unknown digest", ["--allow-unknown"], 0),
    ("unwatched repository", [], 1),
    ("unwatched repository", ["--allow-unknown"], 0),
    ("unreadable", [], 1),
    ("unreadable", ["--allow-unknown"], 0),
    ("unpinned", [], 1),
    ("unpinned", ["--allow-unknown"], 1),
    ("unpinned", ["--allow-unpinned"], 0),
    ("inactive version", [], 0),
    ("inactive version", ["--fail-on-inactive"], 1),
]


@pytest.mark.parametrize(
    ("pin", "options", "code"), VERDICTS, ids=[f"{p} {' '.join(o)}" for p, o, _ in VERDICTS]
)
def test_each_verdict_class_exits_as_documented(tmp_path, pins, pin, options, code):
    path = write(tmp_path, f"FROM {pins[pin]} AS base\nRUN true\n")

    exit_code, output, error = run(path, *options)

    assert exit_code == code
    assert "LINE  REFERENCE" in output
    if code:
        assert error == "1 pin of 1 failed"
        assert "line 1: FAIL " in output
    else:
        assert " FAIL" not in output


def test_one_failing_pin_fails_the_file_and_the_table_names_it(tmp_path, scene, pins):
    path = write(tmp_path, f"FROM {pins['current']}\nFROM {pins['two behind']} AS old\n")

    exit_code, output, error = run(path)

    assert (exit_code, error) == (1, "1 pin of 2 failed")
    lines = output.splitlines()
    now = f"{REFERENCE}:3.14.4@{scene.current.digest}"
    assert lines[1].split() == ["1", now, "current", "3.14.4", now]
    assert lines[2].split()[:5] == ["2", f"{REFERENCE}:3.14.4@{scene.observed.digest}", "behind", "FAIL", "2"]
    assert lines[3].startswith("line 2: FAIL 2 builds behind (at most 0 allowed): An older build")


def test_a_file_with_no_references_passes(tmp_path, db):
    exit_code, output, _ = run(write(tmp_path, "# nothing pinned here\n\nRUN make\n"))

    assert (exit_code, output) == (0, "no references found\n")


def test_standard_input_is_read_for_a_dash(scene, pins):
    compose = f'services:\n  app:\n    image: "{pins["two behind"]}"\n    ports:\n      - 80:80\n'

    assert run("-", stdin=io.StringIO(compose))[0] == 1
    as_bytes = io.TextIOWrapper(io.BytesIO(compose.encode()))
    assert run("-", "--max-behind", "2", stdin=as_bytes)[0] == 0


def test_json_is_the_api_body(client, public, tmp_path, pins):
    text = "\n".join(f"FROM {pin}" for pin in pins.values())
    path = write(tmp_path, text)

    exit_code, output, _ = run(path, "--json", "--max-behind", "2", "--fail-on-inactive")
    response = client.get("/api/v1/pins/check", {"ref": text, "max_behind": 2, "fail_on_inactive": "true"})

    assert exit_code == 1
    assert response.status_code == 200
    body = json.loads(output)
    assert body == response.json()
    assert body["ok"] is False
    assert [(failure["line"], failure["status"]) for failure in body["failed"]] == [
        (4, "not_a_build_of_tag"),
        (5, "unknown"),
        (6, "unknown"),
        (7, "invalid"),
        (8, "no_digest"),
        (9, "current"),
    ]
    assert body["failed"][-1]["reason"] == "its tag's version is inactive: it gets no new builds"
    assert [pin["status"] for pin in body["pins"]][:3] == ["current", "behind", "ahead"]


# --- the policy on its own ----------------------------------------------------------------------


@given(behind=st.integers(min_value=0, max_value=10_000), limit=st.integers(min_value=0, max_value=10_000))
def test_a_behind_pin_passes_exactly_when_it_is_within_the_limit(behind, limit):
    pin = PinResult(1, "x", "behind", "", builds_behind=behind)

    assert (refusal(pin, Policy(max_behind=limit)) is None) == (behind <= limit)


def test_a_behind_pin_without_a_count_never_passes():
    pin = PinResult(1, "x", "behind", "", builds_behind=None)

    assert refusal(pin, Policy(max_behind=10_000)) == "behind (at most 10000 allowed)"


# --- files that cannot be checked: exit 2 with a message, never a traceback -----------------------


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"FROM python:3.12\x00\x01\x02", "holds NUL bytes: a binary file, not text"),
        (b"FROM caf\xe9:1\n", "not UTF-8 text (byte 8 cannot be read)"),
        (b"a" * (MAX_BYTES + 1), "too large (at most 512 KiB of text); split it"),
        ("é" * (MAX_INPUT + 1), "the input is too large (at most 512 KiB); split the list"),
        ("python:3.12\n" * (MAX_REFERENCES + 1), "too many references: more than 200 in one check"),
    ],
    ids=["binary", "latin-1", "huge", "too many characters", "too many references"],
)
def test_a_file_that_cannot_be_checked_exits_2_and_says_why(tmp_path, db, content, says):
    exit_code, output, error = run(write(tmp_path, content))

    assert (exit_code, output) == (2, "")
    assert says in error


def test_a_missing_file_or_a_directory_exits_2(tmp_path):
    assert run(str(tmp_path / "nope"))[::2] == (2, f"{tmp_path / 'nope'}: no such file")
    assert run(str(tmp_path))[::2] == (2, f"{tmp_path}: is a directory, not a file")


def test_a_negative_limit_exits_2(tmp_path):
    assert run(write(tmp_path, ""), "--max-behind", "-1")[::2] == (2, "--max-behind must be 0 or more")


def test_a_long_line_with_escape_sequences_fails_only_itself_and_is_printed_tamed(tmp_path, pins):
    hostile = "FROM \x1b[2J\x1b]0;owned\x07python:" + "a" * 5000
    path = write(tmp_path, f"{hostile}\nFROM {pins['current']}\n")

    exit_code, output, error = run(path)

    assert (exit_code, error) == (1, "1 pin of 2 failed")
    assert "\x1b" not in output and "\x07" not in output
    assert (
        f"line 1: FAIL invalid: tagledger cannot check it: the line is too long ({len(hostile)} characters"
        in output
    )
    assert "?[2J?]0;owned?python:aaa" in output
    assert max(len(line) for line in output.splitlines()) < 400


@pytest.mark.parametrize(
    ("argv", "says"),
    [(["pins"], "the following arguments are required: ACTION"), (["pins", "check"], "FILE"),
     (["pins", "check", "x", "--max-behind", "two"], "invalid int value: 'two'"),
     (["pins", "check", "/nonexistent/Dockerfile"], "CommandError: /nonexistent/Dockerfile: no such file")],
)  # fmt: skip
def test_from_the_command_line_usage_errors_exit_2_without_a_traceback(capsys, argv, says):
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", *argv]).execute()

    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert says in error and "Traceback" not in error


# --- the API ------------------------------------------------------------------------------------


def test_the_api_answers_200_whatever_the_verdict(client, public, pins):
    passing = client.get("/api/v1/pins/check", {"ref": [pins["current"], pins["ahead"]]}).json()
    failing = client.get("/api/v1/pins/check", {"ref": [pins["current"], pins["two behind"]]})

    assert (passing["ok"], passing["failed"], len(passing["pins"])) == (True, [], 2)
    assert failing.status_code == 200
    assert failing.json()["ok"] is False
    assert failing.json()["failed"] == [
        {
            "line": 2,
            "text": pins["two behind"],
            "reference": f"{REFERENCE}:3.14.4@{values_of(pins['two behind'])}",
            "status": "behind",
            "reason": "2 builds behind (at most 0 allowed)",
        }
    ]
    lenient = {"ref": [pins["unknown digest"], pins["unpinned"]], "allow_unknown": 1, "allow_unpinned": 1}
    assert client.get("/api/v1/pins/check", lenient).json()["ok"] is True


def values_of(pin: str) -> str:
    return pin.partition("@")[2]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({}, "ref"),
        ({"ref": "python:3.12", "max_behind": "-1"}, "max_behind"),
        ({"ref": "python:3.12", "max_behind": "1.0"}, "max_behind"),
        ({"ref": "python:3.12", "max_behind": "10001"}, "max_behind"),
        ({"ref": ["python:3.12"] * (MAX_REFERENCES + 1)}, "ref: too many references"),
        ({"ref": "python:3.12\n" * (MAX_REFERENCES + 1)}, "ref: too many references"),
    ],
)
def test_bad_input_is_a_400(client, public, db, query, says):
    response = client.get("/api/v1/pins/check", query)

    assert response.status_code == 400
    assert says in response.json()["detail"]


def test_a_private_instance_asks_for_credentials_and_ci_sends_a_token(client, django_user_model, pins):
    issued = ApiToken.objects.issue(django_user_model.objects.create_user("ci"), "pins gate")
    query = {"ref": pins["current"]}

    assert client.get("/api/v1/pins/check", query).status_code == 401
    answer = client.get("/api/v1/pins/check", query, headers={"Authorization": f"Bearer {issued.secret}"})
    assert (answer.status_code, answer.json()["ok"]) == (200, True)
