"""Graph-level tools over ONNX files: the scalar-timestep converter and the export-variant builder."""
