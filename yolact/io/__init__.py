"""Image and video input, rendering and result files."""
