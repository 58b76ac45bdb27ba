"""Spark jobs compiled from feature_repo/views.py: backfill, training sets."""
