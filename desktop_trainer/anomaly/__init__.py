"""Anomaly mode: a PatchCore-style model fitted on good images only, exported with its map and score."""
