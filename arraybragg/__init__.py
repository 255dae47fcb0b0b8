"""arraybragg: nanoBragg's diffraction physics on any array-API namespace, with adjoints."""

__version__ = "0.1.0"
