"""scaleout: a production-shaped, load-balanced environment on your own machine."""

__version__ = "0.1.0"
