"""Domain errors of the store, enrollment and verification layers (the SigverifyError family)."""

from __future__ import annotations

from siamese.errors import SigverifyError


class InvalidCustomerIdError(SigverifyError):
    """A customer ID is empty, too long, or has characters outside ``[A-Za-z0-9._-]``."""

    code = "invalid_customer_id"
    http_status = 422


class CustomerNotFoundError(SigverifyError):
    """No customer has this ID (never enrolled, or deleted)."""

    code = "customer_not_found"
    http_status = 404


class CustomerSuspendedError(SigverifyError):
    """The customer exists but is suspended, so nothing is verified against it."""

    code = "customer_suspended"
    http_status = 409


class NoReferencesError(SigverifyError):
    """The customer has no reference signature to verify against."""

    code = "no_references"
    http_status = 409


class ModelVersionMismatchError(SigverifyError):
    """The stored embeddings were made by another model version; ``sigverify reindex`` fixes it."""

    code = "model_version_mismatch"
    http_status = 409


class DuplicateReferenceError(SigverifyError):
    """The exact same image file is already enrolled (or appears twice in one request)."""

    code = "duplicate_reference"
    http_status = 409


class ConcurrentUpdateError(SigverifyError):
    """Another request enrolled the same customer or image at the same moment; retrying resolves it."""

    code = "concurrent_update"
    http_status = 409


class EnrollmentRejectedError(SigverifyError):
    """Enrollment was refused: no images, too many, or a blocking warning (see enroll.policy)."""

    code = "enrollment_rejected"
    http_status = 422

    def __init__(self, message: str, warnings: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.warnings = list(warnings or [])


class IndexCorruptError(SigverifyError):
    """The FAISS index file or its metadata is missing, unreadable or inconsistent."""

    code = "index_corrupt"
    http_status = 500


class CustomerExistsError(SigverifyError):
    """A customer with this ID is already enrolled."""

    code = "customer_exists"
    http_status = 409


class ReferenceNotFoundError(SigverifyError):
    """The customer has no reference with this id."""

    code = "reference_not_found"
    http_status = 404


class InvalidUsernameError(SigverifyError):
    """A user name is empty, too long, or has characters outside ``[A-Za-z0-9._@-]``."""

    code = "invalid_username"
    http_status = 422


class InvalidRoleError(SigverifyError):
    """A role is not one of admin, operator, auditor."""

    code = "invalid_role"
    http_status = 422


class UserExistsError(SigverifyError):
    """A user with this name already exists."""

    code = "user_exists"
    http_status = 409


class UserNotFoundError(SigverifyError):
    """No user has this id or name."""

    code = "user_not_found"
    http_status = 404


class LastAdminError(SigverifyError):
    """The change would leave no active admin, so nobody could manage the service any more."""

    code = "last_admin"
    http_status = 409


class ApiKeyNotFoundError(SigverifyError):
    """No API key has this id."""

    code = "api_key_not_found"
    http_status = 404


class InvalidApiKeyError(SigverifyError):
    """An API key is unknown, disabled, or belongs to a disabled user."""

    code = "invalid_api_key"
    http_status = 401


class InvalidApiKeyNameError(SigverifyError):
    """An API key name is empty or longer than 100 characters."""

    code = "invalid_api_key_name"
    http_status = 422


class DatabaseUnavailableError(SigverifyError):
    """The database cannot be reached (down, restarting, out of connections or disk); retry later."""

    code = "database_unavailable"
    http_status = 503
    detail = ""  # the driver's message, for the log only (it may name hosts and ports)


class IndexUnwritableError(SigverifyError):
    """The FAISS index file cannot be written (read-only or full data dir); SQL is unaffected."""

    code = "index_unwritable"
    http_status = 503


class DatabaseNotEmptyError(SigverifyError):
    """The database to copy into already holds rows; copying only fills an empty database."""

    code = "database_not_empty"
    http_status = 409
