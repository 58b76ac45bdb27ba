"""The FastAPI feature API over Feast's Redis online store."""
