"""The registry boundary's one exception family: callers branch on the kind, never on text."""


class RegistryError(Exception):
    """Base of everything the registry client raises."""

    #: Whether trying again later may succeed without anyone changing anything.
    transient = False


class TagNotFound(RegistryError):
    """The registry says this tag (or manifest digest) is unknown, asked with the full Accept list."""


class RepositoryNotFound(RegistryError):
    """The registry says the repository does not exist."""


class AccessDenied(RegistryError):
    """Credentials are missing, wrong or lack the scope. Docker Hub also says this for a missing repo."""


class RateLimited(RegistryError):
    """HTTP 429 after the retries; `retry_after` is seconds to wait, when the registry said."""

    transient = True

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(RegistryError):
    """5xx, 408, connection failure or timeout that outlasted the retries."""

    transient = True


class DigestMismatch(RegistryError):
    """The bytes received do not hash to the digest the registry (or the reference) claims."""

    transient = True

    def __init__(self, expected: str, actual: str):
        super().__init__(f"digest mismatch: expected {expected}, content hashes to {actual}")
        self.expected = expected
        self.actual = actual


class BadResponse(RegistryError):
    """A response that breaks the protocol: wrong media type, malformed JSON, too large, bad links."""


class UnsafeTarget(RegistryError):
    """The registry pointed tagledger where it will not go, so nothing was sent there.

    A token realm or a redirect that downgrades HTTPS to plain HTTP, carries userinfo, or leads to
    a loopback, private, link-local or reserved address while the registry itself is not on one
    of that kind. The message names the target, so a poll's error shows what was refused.
    Not transient: the registry has to change its answer.
    """
