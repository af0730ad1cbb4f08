"""Contracts shared by the board agent and the desktop trainer: labels, manifest, model card.

Pure standard library (``preprocess`` alone needs numpy and OpenCV, which both sides have).
"""

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
    "SampleRecord",
    "SchemaError",
    "default_weld_schema",
    "is_safe_relpath",
    "label_schema_from_names",
    "load_label_schema",
    "sha256_file",
]
