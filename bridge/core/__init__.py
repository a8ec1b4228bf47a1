"""The data layer: notes, codecs, latent math, attributes, training windows, directions, errors.

Numpy only (no onnxruntime, no torch), so the torch side (export_onnx) and the runtime share it.
Imports nothing from the other layers of bridge.
"""
