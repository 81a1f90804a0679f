"""Typer command functions that ``shopfloor.cli`` mounts (wiring only; logic lives in the library)."""
