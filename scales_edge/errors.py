"""Errors scales-edge raises for bad input; the CLI prints them as one line and exits with code 2."""


class ScalesEdgeError(Exception):
    """Base class of the errors that describe a user-facing problem (bad file, bad config, ...)."""


class ConfigError(ScalesEdgeError, ValueError):
    """An unknown architecture, option or value."""


class CheckpointError(ScalesEdgeError):
    """A checkpoint that is missing, corrupt, or does not fit the model."""


class ModelError(ScalesEdgeError):
    """An ONNX model that is missing, malformed, or not what the command needs."""
