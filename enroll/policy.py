"""Enrollment policy: what is an error, what is a warning, and which warnings block.

Errors always reject the whole request and store nothing:
  invalid customer ID, no images or more than ``enroll_max_images``, an image that cannot be used
  (undecodable, too large, too small, no ink), an exact duplicate (same upload bytes already enrolled
  for any customer, or twice in the request), and existing references of another model version
  (run ``sigverify reindex`` first).

Warnings are reported with the result:
  ``inconsistent_reference``  a new reference whose median head score against the customer's other
                              references (existing and new) is below ``enroll_consistency_threshold``
                              (default: the decision threshold but at most ``CONSISTENCY_CEILING``:
                              a single pair of genuine signatures often scores below the decision
                              threshold, which is set for the aggregate over K references); likely a
                              wrong image.
  ``matches_other_customer``  a new reference that would verify as another customer (aggregated head
                              score >= ``enroll_cross_match_threshold``, default: the decision
                              threshold but at least ``CROSS_MATCH_FLOOR``); a possible duplicate or
                              fraudulent enrollment. The floor exists because this check compares
                              each image with many customers: at the plain decision threshold, 1 of
                              55 CEDAR writers imported one after another was blocked by a stranger.

Warnings listed in ``enroll_blocking_warnings`` (default ``matches_other_customer``; "" for none,
"all" for every one) reject the request with ``enrollment_rejected`` unless it is forced
(``force=True``, ``sigverify enroll --force``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from store.settings import Settings

INCONSISTENT_REFERENCE = "inconsistent_reference"
MATCHES_OTHER_CUSTOMER = "matches_other_customer"
WARNING_CODES = (INCONSISTENT_REFERENCE, MATCHES_OTHER_CUSTOMER)
CROSS_MATCH_FLOOR = 0.9  # default 1:N alarm level; see the README (enrollment policy) for its rates
CONSISTENCY_CEILING = 0.3  # default consistency alarm level; rates in the README, same place


@dataclass(frozen=True)
class EnrollmentPolicy:
    """Thresholds and blocking rules of enrollment (see the module docstring)."""

    consistency_threshold: float
    cross_match_threshold: float
    blocking: frozenset[str] = frozenset({MATCHES_OTHER_CUSTOMER})
    max_images: int = 20

    @classmethod
    def from_settings(cls, settings: Settings, decision_threshold: float) -> EnrollmentPolicy:
        """The policy of ``settings``; unset thresholds default to ``decision_threshold``."""
        return cls(
            consistency_threshold=_or(settings.enroll_consistency_threshold,
                                      min(decision_threshold, CONSISTENCY_CEILING)),
            cross_match_threshold=_or(settings.enroll_cross_match_threshold,
                                      max(decision_threshold, CROSS_MATCH_FLOOR)),
            blocking=parse_blocking(settings.enroll_blocking_warnings),
            max_images=settings.enroll_max_images,
        )


@dataclass(frozen=True)
class EnrollmentWarning:
    """One warning: its code, a message, the image it concerns (0-based) and details."""

    code: str
    message: str
    image: int
    details: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """The warning as JSON-ready data."""
        return {"code": self.code, "message": self.message, "image": self.image, **self.details}


def parse_blocking(text: str) -> frozenset[str]:
    """Parse ``enroll_blocking_warnings``: comma-separated codes, "" for none, "all" for all.

    Raises:
        ValueError: an unknown warning code.
    """
    codes = {part.strip() for part in text.split(",") if part.strip()}
    if codes == {"all"}:
        return frozenset(WARNING_CODES)
    unknown = codes - set(WARNING_CODES)
    if unknown:
        raise ValueError(f"unknown enrollment warning codes: {sorted(unknown)}; known: {WARNING_CODES}")
    return frozenset(codes)


def _or(value: float | None, default: float) -> float:
    return float(default if value is None else value)
