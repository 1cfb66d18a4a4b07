"""The node's forwarding rules against kube-proxy's: ours go first only once all of kube-proxy's
FORWARD jumps are in (it adds them one by one, each at the top), read from `iptables -S`."""

from __future__ import annotations

import pytest

from deploy.localkube import host

OURS = [
    "-A FORWARD -i eddyline0 ! -o eddyline0 -m comment --comment eddyline-localkube -j REJECT",
    "-A FORWARD ! -i eddyline0 -o eddyline0 -m comment --comment eddyline-localkube -j REJECT",
]
KUBE = [
    '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "fw" -j KUBE-PROXY-FIREWALL',
    '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
    '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "portals" -j KUBE-SERVICES',
    '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "ext" -j KUBE-EXTERNAL-SERVICES',
]


def chain(monkeypatch: pytest.MonkeyPatch, rules: list[str]) -> None:
    text = "\n".join(["-P FORWARD ACCEPT", *rules])
    monkeypatch.setattr(host, "run", lambda argv: text)


def test_kube_proxy_counts_as_synced_only_with_all_its_jumps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain(monkeypatch, OURS + KUBE[1:2])  # KUBE-FORWARD alone: the sync is under way
    assert not host.kube_proxy_synced()
    chain(monkeypatch, OURS + KUBE)
    assert host.kube_proxy_synced()


def test_ours_are_first_only_when_nothing_precedes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    chain(monkeypatch, OURS + KUBE)
    assert host.forward_rules_first()
    chain(monkeypatch, KUBE[:1] + OURS + KUBE[1:])  # a late jump went above them
    assert not host.forward_rules_first()
