"""Starting throw-away local stacks for tests: free ports, a temporary state folder."""

from __future__ import annotations

from dataclasses import dataclass

from deploy.local.stack.ephemeral import free_settings
from deploy.local.stack.state import StackState
from deploy.settings import StackSettings

__all__ = ["RunningStack", "free_settings"]


@dataclass(frozen=True)
class RunningStack:
    settings: StackSettings
    state: StackState

    @property
    def bootstrap_servers(self) -> str:
        return self.settings.bootstrap_servers

    @property
    def flink_url(self) -> str:
        return self.settings.flink_url
