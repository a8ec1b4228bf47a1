"""The runtime: the model package format (package), onnxruntime sessions (sessions), the Model and its
decode loop (engine), accompaniment (accompany). Imports bridge.core and bridge.io; never torch."""
