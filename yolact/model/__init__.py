"""Network modules: backbone, FPN, ProtoNet, prediction head, YOLACT."""

from yolact.model.yolact import Yolact, build_model

__all__ = ["Yolact", "build_model"]
