"""The synthetic Nav world: the contract's tables plus the ground truth."""

from .world import generate_world

__all__ = ["generate_world"]
