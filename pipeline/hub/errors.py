"""Hub failures as messages that say what to do (never with the token in them)."""

from __future__ import annotations

from pipeline.errors import ConfigError, DistillError, InputError, MissingKeyError, ProviderError


class HubError(ProviderError):
    """The Hub refused or failed a request; the message says why and what to do."""


class HubAuthError(HubError):
    """The token is missing, invalid, read-only, or has no rights on the namespace (401/403)."""


class HubConflictError(HubError):
    """The repo changed while we pushed, or another operation holds it (409)."""


class HubNetworkError(HubError):
    """The Hub could not be reached, or the connection dropped mid-upload."""


NO_TOKEN_ON_SPACE = ("No Hugging Face token: Sign in with Hugging Face (the button in the Hub tab) to push to your "
                     "own account, or paste a token with write access from https://huggingface.co/settings/tokens.")
NO_TOKEN = ("No Hugging Face token: sign in with Hugging Face (on a Space), type a token with write access, "
            "or set HF_TOKEN. Create one at https://huggingface.co/settings/tokens.")


def explain_hub(exc: BaseException, repo_id: str, action: str) -> DistillError:
    """Turn a huggingface_hub / httpx error met while `action` ("pushing", "loading") into our error."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalTokenNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, DistillError):
        return exc
    if isinstance(exc, RuntimeError) and exc.__cause__ is not None:
        # huggingface_hub wraps each failed LFS upload as RuntimeError("Error while uploading ...").
        return explain_hub(exc.__cause__, repo_id, action)
    if isinstance(exc, HFValidationError):
        return invalid_repo_id(repo_id)
    if isinstance(exc, LocalTokenNotFoundError):
        return MissingKeyError(NO_TOKEN)
    if isinstance(exc, OfflineModeIsEnabled):
        return ConfigError("The Hub is disabled here (HF_HUB_OFFLINE is set). Unset it to push or load datasets.")
    if isinstance(exc, GatedRepoError):
        return HubAuthError(f"{repo_id} is gated: accept its conditions on https://huggingface.co/datasets/{repo_id} "
                            "with the account of your token, then load it again.")
    if isinstance(exc, RepositoryNotFoundError):
        return HubError(f"Dataset repo {repo_id} was not found, or it is private and your token cannot see it. "
                        "Check the repo id and sign in (or use a token) with access to it.")
    if isinstance(exc, RevisionNotFoundError):
        return HubError(f"{repo_id} has no such branch or revision. Leave the revision at 'main'.")
    if isinstance(exc, EntryNotFoundError):
        return HubError(f"A file of {repo_id} disappeared while {action}. Try again.")
    if isinstance(exc, ValueError) and str(exc).startswith("Invalid metadata in README.md"):
        # The Hub's /api/validate-yaml refused the card; nothing was uploaded.
        return HubError(f"The Hub refused the dataset card's metadata, so nothing was pushed. {exc}")
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return _from_status(exc.response.status_code, _server_message(exc), repo_id, action)
    if _is_network_error(exc):
        where = " The local dataset was not changed." if action == "pushing" else ""
        return HubNetworkError(f"The connection to the Hub failed while {action} {repo_id}.{where} "
                               "Check the network and try again.")
    return HubError(f"The Hub failed while {action} {repo_id} ({type(exc).__name__}: {exc}). Try again.")


def invalid_repo_id(repo_id: str) -> InputError:
    return InputError(f"'{repo_id}' is not a valid repo id. Use NAME or NAMESPACE/NAME with letters, digits, "
                      "'-', '_' or '.' (not starting or ending with '-' or '.', at most 96 characters).")


def _from_status(status: int, server: str, repo_id: str, action: str) -> DistillError:
    said = f" The Hub said: {server}" if server else ""
    if status == 401:
        return HubAuthError("The Hub rejected the token (401): it is invalid or expired. Sign in again or "
                            f"create a new token at https://huggingface.co/settings/tokens.{said}")
    if status == 403:
        return HubAuthError(f"Your token may not write to {repo_id} (403). Use a token with write access, and a "
                            f"namespace that is your user name or an organization where you can write.{said}")
    if status == 409:
        return HubConflictError(f"{repo_id} was changed by someone else while {action} (409 conflict); nothing "
                                f"was committed. Push again.{said}")
    if status == 429:
        return HubError(f"The Hub is rate limiting requests (429). Wait a minute and try again.{said}")
    if status == 413:
        return HubError(f"The Hub refused the upload as too large (413).{said}")
    if status >= 500:
        return HubNetworkError(f"The Hub had an internal error ({status}) while {action} {repo_id}. "
                               f"Try again in a moment.{said}")
    return HubError(f"The Hub answered {status} while {action} {repo_id}.{said}")


def _server_message(exc: BaseException) -> str:
    """The Hub's own error text (its JSON `error` field), which names the problem; no headers, no token."""
    response = getattr(exc, "response", None)
    try:
        body = response.json() if response is not None else {}
    except ValueError:
        return ""
    text = body.get("error") if isinstance(body, dict) else None
    return str(text).strip()[:300] if text else ""


def _is_network_error(exc: BaseException) -> bool:
    """Connection refused/reset/timeout, possibly wrapped (huggingface_hub wraps LFS upload failures)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # By name: huggingface_hub uses httpx2, other code httpx; both call these RequestError /
        # TransportError (connect, read, write, protocol, timeout), never an HTTP status.
        names = {klass.__name__ for klass in type(current).__mro__}
        if isinstance(current, (ConnectionError, TimeoutError)) or {"TransportError", "RequestError"} & names:
            return True
        current = current.__cause__ or current.__context__
    return False
