"""The YOLACT / YOLACT++ family."""
