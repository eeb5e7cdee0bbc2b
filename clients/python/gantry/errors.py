"""Errors raised by the Gantry client."""

from typing import Optional


class GantryError(Exception):
    """Base class of every error this package raises."""


class APIError(GantryError):
    """The API refused a request.

    ``status`` is the HTTP status, ``code`` the API's stable error code
    (``invalid``, ``unauthorized``, ``forbidden``, ``not_found``,
    ``conflict``, ``gone``, ``unavailable``, ``internal``, or a refusal code
    such as ``quota_exceeded``; ``""`` when the answer carried none) and
    ``message`` the text meant for people.

    >>> try:
    ...     client.submit("gantry/toolbox", ["echo"], cpu=-1)
    ... except gantry.APIError as e:
    ...     print(e.status, e.code, e.message)
    400 invalid cpu: ...
    """

    def __init__(self, status: int, code: str, message: str, retry_after: Optional[float] = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        #: seconds from the ``Retry-After`` header (503, 429), when sent
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return "APIError(status=%d, code=%r, message=%r)" % (self.status, self.code, self.message)


class ConnectError(GantryError, ConnectionError):
    """The server could not be reached (refused, unresolvable, timed out)."""


class WaitTimeout(GantryError, TimeoutError):
    """``Client.wait`` gave up before the job ended; ``job`` is its last state."""

    def __init__(self, message: str, job):
        super().__init__(message)
        self.job = job
