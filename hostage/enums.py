"""Closed vocabularies as string-valued enums.

``Stage("mature")`` works and a wrong string raises ``ValueError``. Serialize
with ``.value``.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["Resection", "Stage", "Status"]


class Stage(str, Enum):
    """Maturity stage of one HO focus on CT (DOMAIN.md), from least to most mature."""

    AMORPHOUS = "amorphous"
    IMMATURE = "immature"
    MATURE = "mature"

    def __str__(self) -> str:
        return self.value


class Resection(str, Enum):
    """Study-level resection-readiness verdict (CONTRACT.md)."""

    READY = "ready"
    NOT_READY = "not_ready"
    INDETERMINATE = "indeterminate"
    NO_FOCI = "no_foci"

    def __str__(self) -> str:
        return self.value


class Status(str, Enum):
    """Outcome of staging one study."""

    OK = "ok"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value
