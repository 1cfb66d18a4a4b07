"""Port checks: a taken port is reported with what needed it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.errors import PortInUseError
from deploy.local.stack import ports


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_listening_port_is_not_free(listener: int) -> None:
    assert not ports.is_free(listener)
    assert ports.listening(listener)


def test_a_fresh_port_is_free() -> None:
    port = ports.free_port()
    assert ports.is_free(port)
    assert not ports.listening(port)


def test_check_free_names_the_taken_port_and_its_purpose(listener: int) -> None:
    with pytest.raises(PortInUseError) as info:
        ports.check_free({"kafka": ports.free_port(), "Flink REST": listener})
    assert info.value.port == listener
    assert f"port {listener} (Flink REST) is already in use" in str(info.value)


def test_ports_are_picked_below_the_kernels_ephemeral_range() -> None:
    assert ports.pick_range((32768, 60999)) == (20000, 29999)
    assert ports.pick_range((25000, 60999)) == (20000, 24999)
    assert ports.pick_range((20500, 60999)) is None  # no room: the kernel's own choice
    assert ports.pick_range(None) is None
    low, _ = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    picked = {ports.free_port() for _ in range(20)}
    assert all(p < int(low) for p in picked), picked
    assert len(picked) > 1  # at random, so two stacks starting at once do not pick alike
