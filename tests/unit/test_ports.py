"""Port checks: a taken port is reported with what needed it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from deploy.errors import PortInUseError
from deploy.stack import ports


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
