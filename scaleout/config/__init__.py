"""Scaleout.yaml: loading, validation and the immutable model."""
