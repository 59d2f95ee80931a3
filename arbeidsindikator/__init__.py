"""arbeidsindikator: Nav's employment indicator, from register tables to published numbers."""

__version__ = "0.1.0"
