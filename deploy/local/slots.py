"""The local stack's TaskManagers as the controller's slot provider: the number of slots the jobs
want goes to the supervisor through its request file (deploy/local/stack/elastic.py), which starts
or stops TaskManagers."""

from __future__ import annotations

import logging
from pathlib import Path

from deploy.local.stack import elastic
from deploy.local.stack import state as stack_state

log = logging.getLogger("eddyline.controller")


class LocalTaskManagers:
    """The local stack's supervisor as slot provider, through its request file."""

    def __init__(self, stack_dir: Path) -> None:
        self.stack_dir = stack_dir
        self._last: int | None = None

    def want(self, slots: int) -> None:
        if slots == self._last:
            return
        try:
            elastic.write_request(self.stack_dir, slots)
        except OSError as e:  # the stack's folder is gone (stack down): ask again next tick
            log.warning("could not ask the stack for %d slots: %s", slots, e)
            return
        log.info("jobs want %d task slots in all", slots)
        self._last = slots

    def headroom(self) -> int:
        st = stack_state.load(self.stack_dir)
        if st is None:
            return 0
        return elastic.headroom(st.taskmanagers, st.max_taskmanagers, st.slots_per_taskmanager)
