"""The domain error family shared by every layer of sigverify.

Each error has a stable machine-readable ``code`` and the HTTP status the web layer answers with.
Higher layers (store, enroll, verify, webapp) subclass :class:`SigverifyError`; the web layer maps
any of them to ``{"error": code, "message": ...}`` and never shows a traceback.
"""

from __future__ import annotations


class SigverifyError(Exception):
    """Base class of every error a user of sigverify may see."""

    code = "error"
    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        """The error as the JSON body the API returns."""
        return {"error": self.code, "message": self.message}


class ImageError(SigverifyError):
    """An uploaded image cannot be used as a signature."""

    code = "invalid_image"
    http_status = 422


class UndecodableImageError(ImageError):
    """The bytes are not an image Pillow can read (empty, truncated, text, unsupported format)."""

    code = "undecodable_image"
    http_status = 415


class ImageTooLargeError(ImageError):
    """The image has more pixels than we agree to decode (decompression bomb guard)."""

    code = "image_too_large"
    http_status = 413


class ImageTooSmallError(ImageError):
    """The image, or the ink in it, is too small to hold a signature."""

    code = "image_too_small"


class NoInkError(ImageError):
    """The image holds no ink: a blank page or a uniform picture."""

    code = "no_ink"


class ModelError(SigverifyError):
    """The model file is missing, unreadable or of the wrong shape."""

    code = "model_error"
    http_status = 500
