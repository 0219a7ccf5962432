"""The ``model.py`` of a Triton python-backend repository entry (``--backend=python``).

:mod:`yolact.batch.triton` copies this file next to ``model.onnx``; Triton's
Python backend then loads it in its stub process, where it runs the ONNX graph
with onnxruntime on the batches Triton's dynamic batcher forms. It serves the
same tensors, names and shapes as the onnxruntime backend, so clients do not
change: for servers that carry only the Python backend (the one PyTriton
bundles). The stub's interpreter ignores ``PYTHONPATH``; its entries are put in
front of ``sys.path`` here, as Python does, so that numpy below 2 (PyTriton's
stub reads numpy 1.x arrays: with numpy 2 every answer fails with "output tensor
shape does not match size of output") and onnxruntime are found where they are
installed. Nothing here imports yolact.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]


class TritonPythonModel:
    """Triton's entry point: one onnxruntime session per model instance."""

    def initialize(self, args: dict[str, str]) -> None:
        """Open ``model.onnx`` of this version folder; read the tensor names."""
        import onnxruntime as ort

        config = json.loads(args["model_config"])
        folder = os.path.join(args["model_repository"], args["model_version"])
        options = ort.SessionOptions()
        threads = os.environ.get("OMP_NUM_THREADS")
        if threads and threads.isdigit():
            options.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(os.path.join(folder, "model.onnx"), options,
                                            providers=["CPUExecutionProvider"])  # fmt: skip
        self.inputs = [t["name"] for t in config["input"]]
        self.outputs = [t["name"] for t in config["output"]]

    def execute(self, requests: list[Any]) -> list[Any]:
        """Run the requests of one dynamic batch as one call; each gets its rows."""
        import numpy as np
        import triton_python_backend_utils as pb  # type: ignore[import-not-found]

        feeds = {}
        for name in self.inputs:
            parts = [pb.get_input_tensor_by_name(r, name).as_numpy() for r in requests]
            feeds[name] = np.concatenate(parts) if len(parts) > 1 else parts[0]
        sizes = [pb.get_input_tensor_by_name(r, self.inputs[0]).as_numpy().shape[0]
                 for r in requests]  # fmt: skip
        results = self.session.run(self.outputs, feeds)
        answers, start = [], 0
        for size in sizes:
            tensors = [pb.Tensor(name, np.ascontiguousarray(value[start : start + size]))
                       for name, value in zip(self.outputs, results)]  # fmt: skip
            answers.append(pb.InferenceResponse(output_tensors=tensors))
            start += size
        return answers
