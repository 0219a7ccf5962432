"""Inference past one process: ``yolact predict`` (JSON lines, resumable, sharded),
Ray Data and Ray Serve integrations, and a Triton model repository writer.

The Ray modules need the ``ray`` extra (``pip install -e ".[ray]"``); nothing
here imports Ray until they are used.
"""
