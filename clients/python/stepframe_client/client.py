"""The stepframe client over grpcio: GenerateSequence as an iterator of events, collect-all, a cancel handle, deadlines, TLS."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Iterator, Optional

import grpc

from ._generated import sequence_service_pb2 as pb
from ._generated import sequence_service_pb2_grpc as pb_grpc

Event = pb.GenerateSequenceResponse


@dataclass
class Sequence:
    """A whole sequence: the images in order and the server's summary."""

    images: list = field(default_factory=list)
    summary: Optional[pb.Summary] = None


class Call:
    """One GenerateSequence stream: iterate it for events; `cancel()` from any thread stops it (the server frees its slot)."""

    def __init__(self, stream: grpc.Call) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[Event]:
        return iter(self._stream)

    def cancel(self) -> None:
        self._stream.cancel()


class StepframeClient:
    """A channel to one stepframe server (or a `dns:///` name with round_robin)."""

    def __init__(
        self,
        address: str = "localhost:50051",
        *,
        root_certificates: Optional[bytes] = None,
        certificate_chain: Optional[bytes] = None,
        private_key: Optional[bytes] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
        round_robin: bool = False,
        options: Optional[list[tuple[str, object]]] = None,
    ) -> None:
        """TLS when any certificate is given (mTLS with `certificate_chain` and `private_key`), or with `credentials`."""
        channel_options: list[tuple[str, object]] = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        if round_robin:
            channel_options.append(("grpc.lb_policy_name", "round_robin"))
        channel_options.extend(options or [])
        if credentials is None and (root_certificates or certificate_chain or private_key):
            credentials = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
        self.channel = grpc.secure_channel(address, credentials, channel_options) if credentials else grpc.insecure_channel(address, channel_options)
        self.stub = pb_grpc.SequenceServiceStub(self.channel)

    def list_models(self, timeout: float = 10.0) -> pb.ListModelsResponse:
        return self.stub.ListModels(pb.ListModelsRequest(), timeout=timeout)

    def generate(self, steps: list[str], *, timeout: Optional[float] = None, **fields: object) -> Call:
        """The stream's events: progress (with stream_progress=True), one image per step, then the summary.

        `timeout` is a deadline in seconds for the whole sequence; the other keywords are
        GenerateSequenceRequest fields (seed, model, num_inference_steps, scheduler, ...).
        """
        return Call(self.stub.GenerateSequence(pb.GenerateSequenceRequest(steps=steps, **fields), timeout=timeout))

    def collect(self, steps: list[str], *, timeout: Optional[float] = None, **fields: object) -> Sequence:
        """The whole sequence at once."""
        sequence = Sequence()
        for event in self.generate(steps, timeout=timeout, **fields):
            kind = event.WhichOneof("event")
            if kind == "image":
                sequence.images.append(event.image)
            elif kind == "summary":
                sequence.summary = event.summary
        return sequence

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "StepframeClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def cancel_after(call: Call, seconds: float) -> threading.Timer:
    """Cancels `call` after `seconds` from a timer thread (a convenience for scripts)."""
    timer = threading.Timer(seconds, call.cancel)
    timer.daemon = True
    timer.start()
    return timer
