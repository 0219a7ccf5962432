"""TensorRT engines are compiled code, loaded as they are: they are cached in the
user's own cache folder, keyed by the SHA-256 of the model file's bytes, never
beside the model (issue 16, item 8)."""

from __future__ import annotations

import hashlib
import os

import pytest

from yolact.backends import runtimes
from yolact.backends.meta import ExportedFileError
from yolact.backends.runtimes import trt_cache_dir


def test_the_cache_is_keyed_by_the_file_content_in_xdg_cache_home(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    shared = tmp_path / "shared"
    shared.mkdir()
    model = shared / "model.onnx"
    model.write_bytes(b"one graph")
    digest = hashlib.sha256(b"one graph").hexdigest()
    assert trt_cache_dir(str(model)) == str(tmp_path / "xdg" / "yolact" / "tensorrt" / digest)
    # Nothing beside the model is looked at.
    assert not trt_cache_dir(str(model)).startswith(str(shared))
    # The same bytes under another name share engines; changed bytes do not.
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(b"one graph")
    assert trt_cache_dir(str(copy)) == trt_cache_dir(str(model))
    model.write_bytes(b"another graph")
    changed = hashlib.sha256(b"another graph").hexdigest()
    assert os.path.basename(trt_cache_dir(str(model))) == changed


def test_without_xdg_cache_home_the_cache_is_under_home(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert runtimes.user_cache_dir() == str(tmp_path / "home" / ".cache" / "yolact")
    # A relative XDG_CACHE_HOME is invalid (XDG base directory spec) and ignored.
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert runtimes.user_cache_dir() == str(tmp_path / "home" / ".cache" / "yolact")


def test_an_unreadable_model_is_one_line(tmp_path) -> None:
    with pytest.raises(ExportedFileError, match=r"missing\.onnx: cannot read it \("):
        trt_cache_dir(str(tmp_path / "missing.onnx"))
