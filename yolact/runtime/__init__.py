"""Runtime policy, shared by every family and backend: where to run (device),
in what precision (``--half``: float16 / bfloat16, bf16 detection), CUDA graphs and
the fixed-batch runner, and how many threads each pool gets."""
