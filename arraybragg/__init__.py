"""arraybragg: nanoBragg's diffraction physics on any array-API namespace, with adjoints."""

__version__ = "0.1.0"

from .nanobragg_args import from_nanobragg_args, parse_nanobragg_args  # noqa: E402
from .params import Beam, Crystal, Detector, Sampling  # noqa: E402
from .simulation import Simulation  # noqa: E402

__all__ = ["Beam", "Crystal", "Detector", "Sampling", "Simulation", "from_nanobragg_args", "parse_nanobragg_args",
           "__version__"]
