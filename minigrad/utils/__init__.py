"""Helpers around the engine: gradient checking, checkpoints, metrics, plots."""
