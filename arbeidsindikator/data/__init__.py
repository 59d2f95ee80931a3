"""What comes in: the data contract, its validation, atomic file writing, and the synthetic Nav
world that produces contract tables with a known truth. Imports nothing from the layers above."""
