"""Runners execute the ingest stages: locally now; distributed engines share the stages."""
