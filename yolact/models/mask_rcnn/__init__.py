"""The Mask R-CNN reference family, with its research options."""
