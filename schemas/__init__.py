"""Single source of truth for every table the pipeline writes, and for the ledger's reason codes."""

from schemas.reasons import REASONS, Reason, reasons_for_stage
from schemas.tables import (
    CANDIDATE_CORE,
    LEDGER,
    RESERVED_COLUMNS,
)

__all__ = [
    "CANDIDATE_CORE",
    "LEDGER",
    "REASONS",
    "RESERVED_COLUMNS",
    "Reason",
    "reasons_for_stage",
]
