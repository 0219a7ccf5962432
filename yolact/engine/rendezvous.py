"""A store of the group's own under torchrun, so that a restarted group can connect.

torchrun (with ``TORCHELASTIC_USE_AGENT_STORE=True`` in the processes' environment,
its default) hands its training processes one key-value store that lives as long
as torchrun itself. The process group publishes each process's address there under
the same keys at every start, so after a restart a new process may read the address
of a process that died with the old group and fail to connect (PyTorch issues
135712 and 167288); each such failure costs one of the ``--max-restarts``.

Here rank 0 starts a fresh store for the group at each start and publishes its
address, with a one-off token, in torchrun's store. The other ranks take the address
from there and connect to it; an address left by a dead group answers with no store
or with another token, so they read the key again until rank 0 of this start has
published its own. Every process of the old group has ended before the new group
starts (torchrun stops them first), so a store that answers with the token it was
given is this group's.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import timedelta

import torch.distributed as dist

KEY = "yolact/group_store"
"""The key in torchrun's store that holds ``host:port:token`` of the group's store."""

_TOKEN = "yolact/token"
_RETRY_S = 0.5  # between reads of a stale address
_CONNECT_S = 5.0  # to wait for one address's store to answer

_held: list[dist.Store] = []  # rank 0's store server lives as long as this process


def uses_torchrun_store() -> bool:
    """Whether torchrun offers its own store to the training processes."""
    return os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"


def group_store(rank: int, world_size: int, timeout: timedelta) -> dist.Store:
    """The store this start's process group is formed on (see the module's text).

    Args:
        rank: this process's rank.
        world_size: the processes of the group.
        timeout: how long to wait for rank 0's store, and the store's own timeout.

    Raises:
        RuntimeError: no store of this start answered within ``timeout``.
    """
    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    torchrun = dist.TCPStore(host, port, is_master=False, timeout=timeout)
    if rank == 0:
        own = dist.TCPStore(host, 0, world_size, is_master=True, timeout=timeout,
                            wait_for_workers=False)  # fmt: skip
        token = uuid.uuid4().hex
        own.set(_TOKEN, token)
        _held.append(own)
        torchrun.set(KEY, f"{host}:{own.port}:{token}")
        return own
    give_up = time.monotonic() + timeout.total_seconds()
    while True:
        address = torchrun.get(KEY).decode()  # waits until one is there
        store = _connect(address)
        if store is not None:
            store.set_timeout(timeout)
            return store
        if time.monotonic() > give_up:
            raise RuntimeError(f"no store of this group's rank 0 answered at {address}")
        time.sleep(_RETRY_S)


def _connect(address: str) -> dist.Store | None:
    """The store at ``host:port:token`` when it answers with that token, else None.

    A plain connection is tried first: an address left by a dead group refuses it at
    once, where a store client would wait and log each failed try.
    """
    host, port, token = address.rsplit(":", 2)
    try:
        with socket.create_connection((host, int(port)), timeout=_CONNECT_S):
            pass
        store = dist.TCPStore(host, int(port), is_master=False,
                              timeout=timedelta(seconds=_CONNECT_S))  # fmt: skip
        if store.check([_TOKEN]) and store.get(_TOKEN).decode() == token:
            return store
    except (OSError, RuntimeError, ValueError):  # nothing listens there now, or no store
        return None
    return None
