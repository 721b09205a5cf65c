"""Recipes: the components wired into the commands, one module per command group (`profile`, `train`, `run`, `online`,
`diagnose`, `label`, `graph`, `skillmix`, `localize`); each module's docstring gives its steps as pseudocode, and
`skillgap/api.py`'s verbs call the same functions."""
