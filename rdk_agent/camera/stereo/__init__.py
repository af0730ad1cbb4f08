"""Stereo depth: calibration, rectification, matching and the pair providers behind the ``stereo:`` source."""
