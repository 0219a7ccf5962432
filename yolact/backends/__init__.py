"""Exported graphs (ONNX, OpenVINO) run like checkpoints.

Shared code: it imports no family. A file written by ``python -m yolact.export``
carries what is needed to use it (config name, class names, input size and
normalisation, the NMS and crop baked into the graph) in its metadata.
"""
