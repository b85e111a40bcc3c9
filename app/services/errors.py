"""Domain errors raised by services; ``app.web.problems`` maps each to an HTTP problem document."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.__class__.__doc__)
        self.detail = detail


class NotFound(DomainError):
    """The resource does not exist, or is not yours."""


class AlreadyExists(DomainError):
    """A resource with this identifier already exists."""


class Conflict(DomainError):
    """The request conflicts with the current state."""


class AuthenticationFailed(DomainError):
    """The credentials were not accepted."""


class LockedOut(DomainError):
    """Too many attempts; try again later."""

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class Unavailable(DomainError):
    """A service this request depends on is unavailable."""


class InvalidInput(DomainError):
    """Input that is well-formed but refused by a rule; ``errors`` names the fields (422)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(message for messages in errors.values() for message in messages))
        self.errors = errors
