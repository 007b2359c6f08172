"""OpenAI-shaped errors: `{"error": {"message", "type", "param", "code"}}` with the matching status.

The openai SDK maps the status to its exception classes (401 AuthenticationError, 404 NotFoundError,
400 BadRequestError, ...) and shows `message`, so messages say what to do.
"""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)
_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
          409: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error",
          500: "server_error", 503: "server_error"}


class APIError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 type_: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type = type_ or _TYPES.get(status, "invalid_request_error")


def error_body(status: int, message: str, param: str | None = None, code: str | None = None,
               type_: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_ or _TYPES.get(status, "invalid_request_error"),
                      "param": param, "code": code}}


def error_response(status: int, message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, param, code), status_code=status)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def not_found(what: str, ident: str, param: str | None = None) -> APIError:
    return APIError(404, f"The {what} '{ident}' does not exist on this local backend.", param=param,
                    code=f"{what.replace(' ', '_')}_not_found")


def install(app) -> None:
    """Route FastAPI's own errors (404 route, 405, 422 validation, crashes) through the same shape."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(error_body(exc.status, exc.message, exc.param, exc.code, exc.type),
                            status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404:
            message = "Unknown URL. This local backend serves the OpenAI /v1 models, chat/completions, files, fine_tuning/jobs and batches endpoints."
        return error_response(exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return error_response(400, f"Invalid request: {first.get('msg', 'bad input')} ({param}).", param)

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        # The details go to the server log, not to the client (they can name paths and internals).
        log.error("request failed", exc_info=exc)
        return error_response(500, "The local backend failed on this request; its log has the details. "
                              "Try again, and report it if it repeats.")
