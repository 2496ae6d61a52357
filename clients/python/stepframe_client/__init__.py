"""stepframe's Python client: recipe steps in, one streamed image per step out (stepframe.v1)."""
from ._generated import sequence_service_pb2 as messages
from .client import Call, Sequence, StepframeClient, cancel_after

__all__ = ["Call", "Sequence", "StepframeClient", "cancel_after", "messages"]
__version__ = "1.0.0"
