"""Benchmark evaluation: load items, score answers, run models concurrently, check for leakage."""

from pipeline.evaluate.bench import BenchItem, load_benchmark, parse_benchmark
from pipeline.evaluate.leakage import find_leaks
from pipeline.evaluate.runner import (
                                      Answer,
                                      Target,
                                      build_results,
                                      every_model_evaluated,
                                      iter_answers,
                                      run_benchmark,
)
from pipeline.evaluate.runs import latest_results, list_runs, load_run, save_results, verdict_changes
from pipeline.evaluate.scoring import extract_final_answer, score_contains, score_final_answer

__all__ = ["Answer", "BenchItem", "Target", "build_results", "every_model_evaluated", "extract_final_answer",
           "find_leaks", "iter_answers", "latest_results", "load_benchmark", "parse_benchmark",
           "list_runs", "load_run", "run_benchmark", "save_results", "score_contains", "score_final_answer",
           "verdict_changes"]
