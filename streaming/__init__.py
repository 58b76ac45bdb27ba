"""Flink jobs compiled from feature_repo/views.py (runs in .venv-flink)."""
