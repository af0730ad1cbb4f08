"""Dataset sources (folder, archive, agent), the deterministic split and the Lightning data module."""
