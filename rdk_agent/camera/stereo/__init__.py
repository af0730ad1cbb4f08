"""Stereo depth: calibration, rectification, matching and the pair providers behind the ``stereo:`` source.

``calibration`` (the calibration file and the rectification built from it), ``calibrate_core`` (checkerboard
calibration for ``python -m rdk_agent.calibrate``), ``providers`` (pairs from files or stacked frames; the
``rdk`` provider is ``rdk_provider``, libsrcampy imported lazily), ``depth`` (rectified pair to uint16 mm),
``source`` (``StereoCamera``: provider + calibration + depth behind the CameraSource interface) and ``render``
(stereo pairs of a known height field for the tests and the bench).
"""
