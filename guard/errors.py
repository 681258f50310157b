"""The error tree every public call raises from.

Each error carries a stable ``code`` (used as the reason code and the problem+json type) and a
message that tells the caller what to do next. The HTTP status each maps to is stated here once.
"""

from __future__ import annotations


class GuardError(Exception):
    """Base of every error Likeness Guard raises on purpose."""

    code = "guard_error"
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(GuardError):
    """The request or file is malformed; nothing was changed. Fix the input and retry."""

    code = "invalid_input"
    http_status = 400


class PayloadTooLarge(InvalidInput):
    """The upload exceeds a configured byte or pixel cap."""

    code = "payload_too_large"
    http_status = 413


class UnsupportedMedia(InvalidInput):
    """The file is not an image type the guard accepts."""

    code = "unsupported_media"
    http_status = 415


class UndecodableImage(InvalidInput):
    """The file claims to be an accepted image type but its pixels cannot be decoded."""

    code = "undecodable_image"
    http_status = 422


class UnprocessableInput(InvalidInput):
    """Well-formed, but holding something the guard cannot account for or accept; ``code``
    says what: ``unrecognised_image_field`` (an image where the API's adapter declares none),
    ``unverifiable_image_reference`` (a URL or file id the guard cannot see behind),
    ``ambiguous_request`` (duplicate keys or parts that readers resolve differently),
    ``too_many_images``, ``too_many_parts``, ``invalid_text`` (not UTF-8, lone surrogates),
    ``invalid_operation``, ``invalid_json``, ``invalid_params`` (an editor's parameter of the
    wrong type, range or name), ``prompt_required``. Refused before any decision: nothing is
    audited."""

    code = "unprocessable_input"
    http_status = 422


class EnrollmentRefused(InvalidInput):
    """This face may not become the subject's template; ``code`` says why:
    ``enrollment_matches_public_figure`` (the blocklist holds it and no operator linked this
    subject to that figure), ``enrollment_matches_another_subject`` (the tenant already enrolled
    this person as another subject), ``enrollment_not_this_person`` (not the person the
    subject's faces on record show) or ``enrollment_face_unreliable`` (too small or faint for a
    template that will stand for a consenting person). Nothing was stored."""

    code = "enrollment_refused"
    http_status = 422


class Unauthenticated(GuardError):
    """No API key, or one that is unknown or revoked. Send a valid key (``guard keys create``)."""

    code = "unauthenticated"
    http_status = 401


class Forbidden(GuardError):
    """The API key is valid but its role may not do this, or the object is another tenant's."""

    code = "forbidden"
    http_status = 403


class RateLimited(GuardError):
    """Too many requests for this API key; retry after ``retry_after`` seconds."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(GuardError):
    """A component the decision depends on cannot be read. Decisions fail closed on this."""

    code = "unavailable"
    http_status = 503


class KeyMaterialError(Unavailable):
    """A key (HMAC, template or audit checkpoint key) is missing, too short or unparsable. The
    message names the file or setting and what is wrong, never the key. ``guard serve`` refuses
    to start on a bad key; a request that needs it fails closed (``unavailable``, 503)."""


class NotFound(GuardError):
    """The named object does not exist (or is not visible to this tenant)."""

    code = "not_found"
    http_status = 404


class Conflict(GuardError):
    """The change conflicts with the current state (duplicate id, already revoked, ...)."""

    code = "conflict"
    http_status = 409


class EditTimedOut(GuardError):
    """The editor ran past its time limit and was stopped; nothing was produced."""

    code = "edit_timed_out"
    http_status = 504


class ConfigurationError(GuardError):
    """A setting is missing or wrong; the message names the setting to fix."""

    code = "configuration_error"
    http_status = 500
