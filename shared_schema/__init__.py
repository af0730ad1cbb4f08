"""Contracts shared by the board agent and the desktop trainer: labels, manifest, model card.

Pure standard library (``preprocess`` alone needs numpy and OpenCV, and ``read_model_card`` ONNX Runtime,
which both sides have; each is imported only where it is used).
"""

from shared_schema.card_io import ModelCardError, card_from_metadata, read_model_card
from shared_schema.errors import SchemaError
from shared_schema.labels import Label, LabelSchema, default_weld_schema, label_schema_from_names, load_label_schema
from shared_schema.manifest import (
    DEPTH_UNIT,
    FORMAT_NAME,
    FORMAT_VERSION,
    DatasetManifest,
    FileRef,
    SampleRecord,
    is_safe_relpath,
    sha256_file,
)
from shared_schema.model_card import METADATA_KEY, InputContract, ModelCard

__version__ = "0.1.0"

__all__ = [
    "DEPTH_UNIT",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "DatasetManifest",
    "FileRef",
    "InputContract",
    "Label",
    "LabelSchema",
    "ModelCard",
    "ModelCardError",
    "SampleRecord",
    "SchemaError",
    "card_from_metadata",
    "default_weld_schema",
    "is_safe_relpath",
    "label_schema_from_names",
    "load_label_schema",
    "read_model_card",
    "sha256_file",
]
