"""The UI: one module per tab, `build_<tab>_tab(ctx) -> dict[str, Component]`; wiring only."""
