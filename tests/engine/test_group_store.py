"""Issue 20 item 2: after a torchrun restart the ranks form their group on this start's
store, never on an address that a dead group left in torchrun's shared store."""

from __future__ import annotations

import queue
import threading
from datetime import timedelta

import pytest
import torch.distributed as dist
from conftest import free_port
from train_run import HANG_S

from yolact.engine import rendezvous


@pytest.fixture
def torchrun_store(monkeypatch):
    """A store standing in for torchrun's, announced as torchrun announces it."""
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(store.port))
    return store


@pytest.mark.parametrize("stale", ["dead", "other token"])
def test_rank_1_waits_past_a_dead_groups_address(torchrun_store, monkeypatch, stale):
    assert rendezvous.uses_torchrun_store()
    if stale == "dead":  # the old rank 0's store has gone with its process
        address = f"127.0.0.1:{free_port()}:0123"
    else:  # a store answers there, but not with the token published beside it
        old = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
        old.set("yolact/token", "old")
        address = f"127.0.0.1:{old.port}:0123"
    torchrun_store.set(rendezvous.KEY, address)

    tried: queue.Queue[str] = queue.Queue()
    connect = rendezvous._connect

    def watched(addr: str):
        store = connect(addr)
        tried.put(addr if store is None else "connected")
        return store

    monkeypatch.setattr(rendezvous, "_connect", watched)
    monkeypatch.setattr(rendezvous, "_RETRY_S", 0.01)
    got: queue.Queue = queue.Queue()
    timeout = timedelta(seconds=HANG_S)
    rank1 = threading.Thread(target=lambda: got.put(rendezvous.group_store(1, 2, timeout)))
    rank1.start()
    assert tried.get(timeout=HANG_S) == address  # refused: rank 1 does not take it
    own = rendezvous.group_store(0, 2, timeout)  # this start's rank 0 publishes its store
    joined = got.get(timeout=HANG_S)
    rank1.join(timeout=HANG_S)
    own.set("hello", "from rank 0")
    assert joined.get("hello") == b"from rank 0"
    assert torchrun_store.get(rendezvous.KEY).decode().startswith(f"127.0.0.1:{own.port}:")


def test_outside_torchrun_no_store_of_its_own(monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE", raising=False)
    assert not rendezvous.uses_torchrun_store()
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "False")
    assert not rendezvous.uses_torchrun_store()
