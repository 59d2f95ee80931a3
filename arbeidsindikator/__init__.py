"""arbeidsindikator: Nav's employment indicator, from register tables to published numbers."""

__version__ = "0.1.0"

from .api import Results, RunResult, connect_data, fit_model, load_spec, parse_spec, run_indicator  # noqa: E402
from .data.synth import generate_world  # noqa: E402

__all__ = ["Results", "RunResult", "connect_data", "fit_model", "generate_world", "load_spec", "parse_spec",
           "run_indicator", "__version__"]
