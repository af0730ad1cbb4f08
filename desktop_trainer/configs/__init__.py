"""The trainer's Hydra configs (a package, so that ``initialize_config_module`` and wheels find them)."""
