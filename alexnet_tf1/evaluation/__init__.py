"""Restoring, scoring, ensembles, neighbours and the figures."""
