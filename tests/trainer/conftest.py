"""Trainer fixtures live in trainer_support (importable helpers); re-exported here for pytest."""

from tests.trainer.trainer_support import live_agent, live_agent_archive, synthetic_folder

__all__ = ["live_agent", "live_agent_archive", "synthetic_folder"]
