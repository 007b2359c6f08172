"""Guided demo scenarios: the whole story (data, augmentation, fine-tune, side-by-side, scoreboard)
as a list of steps that each call the same pipeline functions the tabs call."""

from pipeline.demo.context import STEP_TITLES, DemoRun, StepResult, add_to_log, restore_draft
from pipeline.demo.scenarios import Scenario, list_scenarios, load_scenario
from pipeline.demo.steps import run_step

__all__ = ["STEP_TITLES", "DemoRun", "Scenario", "StepResult", "add_to_log", "list_scenarios", "load_scenario",
           "restore_draft", "run_step"]
