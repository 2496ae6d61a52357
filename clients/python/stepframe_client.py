"""A small Python client for stepframe's SequenceService, over the generated grpcio stubs."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent / "generated"))

from stepframe.v1 import sequence_service_pb2 as pb  # noqa: E402
from stepframe.v1 import sequence_service_pb2_grpc as pb_grpc  # noqa: E402


class StepframeClient:
    def __init__(self, address: str = "localhost:50051", credentials: grpc.ChannelCredentials | None = None):
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        self.channel = grpc.secure_channel(address, credentials, options) if credentials else grpc.insecure_channel(address, options)
        self.stub = pb_grpc.SequenceServiceStub(self.channel)

    def list_models(self, timeout: float = 10.0) -> pb.ListModelsResponse:
        return self.stub.ListModels(pb.ListModelsRequest(), timeout=timeout)

    def generate(self, steps: list[str], timeout: float | None = None, **fields) -> Iterator[pb.GenerateSequenceResponse]:
        """Yields the stream's events: progress (if stream_progress=True), one image per step, the summary."""
        return self.stub.GenerateSequence(pb.GenerateSequenceRequest(steps=steps, **fields), timeout=timeout)

    def close(self) -> None:
        self.channel.close()
