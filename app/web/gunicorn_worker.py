"""gunicorn's own error answers as problem documents (configured in ``gunicorn.conf.py``).

gunicorn answers requests it cannot parse (a bad request line, header or chunk, or one beyond its
limits) itself, with an HTML page, before the app sees them. This worker answers them as the app
would: ``application/problem+json`` (RFC 9457) with a request id and the app's security headers.
The app's own limits (``app.web.http``) are set below gunicorn's, so this is the last line only.
"""

from __future__ import annotations

import json
import uuid
from http import HTTPStatus
from typing import Any

from gunicorn import util
from gunicorn.http.errors import (
    ConfigurationProblem,
    ExpectationFailed,
    ForbiddenProxyRequest,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    LimitRequestHeaders,
    LimitRequestLine,
    ParseException,
    UnsupportedTransferCoding,
)
from gunicorn.workers.gthread import ThreadWorker

# The status gunicorn chooses for each of its parse errors; anything else a client sent is 400.
STATUS_OF = ((LimitRequestLine, 414), (LimitRequestHeaders, 431), (UnsupportedTransferCoding, 501),
             (ExpectationFailed, 417), (ForbiddenProxyRequest, 403), (ConfigurationProblem, 500))
SLUG_OF = {400: "bad-request", 403: "forbidden", 414: "uri-too-long", 417: "expectation-failed",
           431: "header-fields-too-large", 500: "internal-error", 501: "not-implemented"}
SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
                    ("X-Frame-Options", "DENY"), ("Cache-Control", "no-store"),
                    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"))


def problem_answer(status: int, request_id: str) -> bytes:
    """A complete HTTP/1.1 response carrying a problem document; the connection is closed after."""
    body = json.dumps({"type": f"/problems/{SLUG_OF.get(status, 'error')}", "title": HTTPStatus(status).phrase,
                       "status": status, "request_id": request_id}).encode()
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Connection: close",
            "Content-Type: application/problem+json", f"Content-Length: {len(body)}",
            f"X-Request-ID: {request_id}", *(f"{name}: {value}" for name, value in SECURITY_HEADERS)]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class ProblemThreadWorker(ThreadWorker):
    """gunicorn's threaded worker, answering its own errors with problem documents."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn's choice of status (and its logging), a problem document for an answer."""
        request_id = uuid.uuid4().hex
        if isinstance(exc, ParseException) and not isinstance(exc, InvalidResponseHeader | InvalidResponseHeaderName):
            status = next((code for kind, code in STATUS_OF if isinstance(exc, kind)), 400)
            self.log.warning("invalid request from ip=%s: %s (request id %s)", (addr or ("",))[0],
                             type(exc).__name__, request_id)
        else:  # the app failed in a way Flask did not catch, or sent a header gunicorn refuses
            status = 500
            self.log.exception("error handling a request (request id %s)", request_id)
        try:
            util.write_nonblock(client, problem_answer(status, request_id))
        except Exception:  # the client may be gone already
            self.log.debug("failed to send the error answer")
