"""Inspection: rule-based evaluator, ONNX classifier, engine choice with fallback, model hot reload."""
