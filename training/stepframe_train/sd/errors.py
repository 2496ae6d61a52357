"""The one error a checkpoint folder raises when stepframe cannot load it exactly."""


class CheckpointError(ValueError):
    """A checkpoint or its config that this code would load wrongly: the message names the file, key or option."""
