"""Bulk generation and evaluation through a Batch API (OpenAI, Azure OpenAI, vLLM run-batch, the
local backend): build the request file, submit, follow, collect exactly once, export/import.
Records live per visitor in the workspace (records.py); bodies are the interactive path's own (build.py)."""

from pipeline.batch.build import build_evaluation, build_generation, estimate_evaluation
from pipeline.batch.collect import CollectReport, collect, failed_requests, needs_endpoint
from pipeline.batch.costs import BatchEstimate, batch_cost_usd, estimate_of
from pipeline.batch.provider import cancel, refresh, submit, wait
from pipeline.batch.records import BatchRecord, Part, list_batches, load_batch, save_batch
from pipeline.batch.results import ResultLine, parse_result_line
from pipeline.batch.transfer import import_results, request_file, retry_failed


def estimate_cost(record: BatchRecord) -> BatchEstimate:
    """The cost of a built batch at batch prices (and one by one), as shown before submitting."""
    return estimate_of(record.estimate)


__all__ = ["BatchEstimate", "BatchRecord", "CollectReport", "Part", "ResultLine", "batch_cost_usd", "build_evaluation",
           "build_generation", "cancel", "collect", "estimate_cost", "estimate_evaluation", "failed_requests", "import_results",
           "list_batches", "load_batch", "needs_endpoint", "parse_result_line", "refresh", "request_file", "retry_failed",
           "save_batch", "submit", "wait"]
