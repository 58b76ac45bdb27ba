"""Feast's entities, feature views, push sources and feature services for this repository.

Nothing here is written by hand: every object is compiled from the declarations in views.py, so
`feast apply` registers exactly what the Flink job and the Spark backfill compute.
"""
from pathlib import Path

from tessera.config import load_settings
from tessera.definitions import DefinitionError, load_definitions
from tessera.feast_objects import compile_feast_objects

_here = Path(__file__).resolve().parent
try:
    _objects = compile_feast_objects(load_definitions(_here), load_settings(start=_here))
except DefinitionError as _err:
    # Feast imports this file; a traceback through its import machinery would bury the one line
    # that matters, which already names the file, line and field.
    raise SystemExit(f"error: {_err}") from None
except ValueError as _err:  # tessera.toml: TOML syntax or a mistyped setting
    raise SystemExit(f"error: configuration: {_err}") from None

# Feast finds objects by scanning this module's globals.
globals().update(_objects.by_name())
