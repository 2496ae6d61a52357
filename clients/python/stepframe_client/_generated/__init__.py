"""protoc output for proto/stepframe/v1/sequence_service.proto (clients/python/generate.sh)."""
