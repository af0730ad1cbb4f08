"""Desktop trainer: dataset sync, Lightning training, ONNX export with the model card embedded."""

__version__ = "0.1.0"
