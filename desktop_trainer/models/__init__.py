"""Backbones, the LightningModule and model-size accounting."""
