"""The two ways an audit can end badly."""
from __future__ import annotations


class AuditError(Exception):
    """The ledger's records, or a file checked against them, do not hold together.

    A broken lineage link, a version that was never approved by a stake quorum, a model file whose
    parameters are not the ones the ledger recorded. The CLI exits with status 1.
    """


class BadInput(ValueError):
    """The caller asked for something that is not there or cannot be read.

    An unknown job, version, alias, round or org; a missing file; a file that is not a fedfabric
    model. Nothing was checked. The CLI exits with status 2.
    """
