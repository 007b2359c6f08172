"""Distill Studio's logic: datasets, tokens and cost, generation, fine-tuning, chat, evaluation, Hub.

Nothing in this package imports gradio (a test enforces it): the UI in components/ is wiring only,
and the command line (`python -m pipeline ...`) calls the same functions.
"""
