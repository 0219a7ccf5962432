"""Box, NMS and mask operations on tensors."""
