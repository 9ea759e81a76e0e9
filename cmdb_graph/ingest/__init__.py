"""Identification, reconciliation and import runs."""
