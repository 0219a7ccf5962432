"""Command-line front ends (``eval.py``, ``train.py``)."""
