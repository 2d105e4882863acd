"""Audit: trace any model back to version 0, summarize rounds and orgs, verify model files, report, PROV.

Every function takes a ledger client — a :class:`fedfabric.client.FedFabricClient` or anything
with the same read methods (``get_job``, ``get_version``, ``list_versions``, ``list_rounds``,
``round_report``, ``org_report``, ``org_history``, ``list_orgs``, ``list_aliases``) — and only reads.
Round records are read as the protocol's :class:`fedfabric_protocol.records.RoundRecord` (states and
phases are its enums). Block numbers come from ``client.block_of_tx(tx_id)`` when the client has it,
else from qscc.

Errors: :class:`BadInput` (unknown job/version/org, missing or non-model file) and
:class:`AuditError` (the records, or a file, do not check out).
"""
from .common import combine_metrics, resolve_org, scale_metric
from .errors import AuditError, BadInput
from .lineage import lineage
from .prov import prov_document, write_prov
from .report import ReportFiles, collect, report
from .summary import org_summary, round_summary
from .verify import Check, VerifyResult, export_version, fetch_version, model_architecture, verify

__all__ = ["AuditError", "BadInput", "Check", "ReportFiles", "VerifyResult", "collect", "combine_metrics",
           "export_version", "fetch_version", "lineage", "model_architecture", "org_summary", "prov_document",
           "report", "resolve_org", "round_summary", "scale_metric", "verify", "write_prov"]
