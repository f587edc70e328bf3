"""The pins CI gate: which pins of a check fail a policy (how far behind, inactive versions, what
cannot be checked), for `manage.py pins check` and `/api/v1/pins/check`.

The pins are read and resolved by history.pins, as the pin check page reads pasted text; this
module only judges its results, so the page, the API and the gate never disagree about a pin.
"""

from dataclasses import dataclass

from .pins import PinResult, check
from .wording import plural

# A gate must not pass what it cannot check: unknown and unreadable lines, and references without
# a digest, fail unless the policy lets them through.
UNCHECKED = frozenset({"unknown", "invalid"})


@dataclass(frozen=True)
class Policy:
    """What a pin may be and still pass. The default is strict: only the tag's current build (or a
    newer build of its version or line) passes, as a pin a CI run should keep up to date."""

    max_behind: int = 0  # builds a pin may be behind its tag (builds_behind, by its `known_from`)
    fail_on_inactive: bool = False  # the version the tag points into gets no new builds
    allow_unknown: bool = False  # pins tagledger cannot check (unwatched, unknown tag or digest, invalid)
    allow_unpinned: bool = False  # references without a digest (`FROM python:3.12`)


@dataclass(frozen=True)
class Failure:
    """One pin the policy refuses, and why in one sentence."""

    pin: PinResult
    reason: str

    def as_dict(self) -> dict:
        return {
            "line": self.pin.line,
            "text": self.pin.text,
            "reference": self.pin.reference,
            "status": self.pin.status,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Verdict:
    pins: list[PinResult]
    failed: list[Failure]

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict:
        """The API's body and `pins check --json`: the CI script reads `ok`."""
        return {
            "ok": self.ok,
            "failed": [failure.as_dict() for failure in self.failed],
            "pins": [pin.as_dict() for pin in self.pins],
        }


def gate(text: str | list[str], policy: Policy) -> Verdict:
    """Check the pins in `text` (a Dockerfile, compose file or list) against `policy`; raises
    history.pins.PinError when the input is refused whole."""
    results = check(text)
    failed = [Failure(pin, reason) for pin in results if (reason := refusal(pin, policy))]
    return Verdict(results, failed)


def refusal(pin: PinResult, policy: Policy) -> str | None:
    """Why `pin` fails `policy`, or None when it passes."""
    if pin.status in UNCHECKED:
        return None if policy.allow_unknown else f"{pin.status}: tagledger cannot check it"
    if pin.status == "no_digest":
        return None if policy.allow_unpinned else "not pinned to a digest"
    if pin.status == "not_a_build_of_tag":
        return "not a build of its tag"
    if pin.status == "behind":
        # A behind pin always has a count; a missing one is read as too far, never as a pass.
        behind = pin.builds_behind
        if behind is None or behind > policy.max_behind:
            count = "behind" if behind is None else f"{plural(behind, 'build')} behind"
            return f"{count} (at most {policy.max_behind} allowed)"
    if policy.fail_on_inactive and pin.version_inactive:
        return "its tag's version is inactive: it gets no new builds"
    return None
