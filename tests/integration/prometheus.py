"""A real Prometheus server for the monitoring tests, scraping a test stack's metrics endpoints.

The binary is Debian's, unpacked into .cache/prometheus by scripts/ensure-prometheus.sh (run by
`make test`). It listens on a free loopback port, keeps its data in a temporary folder and is
stopped by PID.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from deploy import paths
from deploy.local.stack import ports

BINARY_ENV = "EDDYLINE_PROMETHEUS"
SCRAPE_INTERVAL_S = 1


def binary() -> Path:
    given = os.environ.get(BINARY_ENV)
    return (
        Path(given)
        if given
        else paths.PROJECT_ROOT / ".cache" / "prometheus" / "bin" / "prometheus"
    )


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result (now, or at the epoch seconds `at`); AssertionError with
        Prometheus's message if it fails."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        answer = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=30).json()
        assert answer.get("status") == "success", f"{expr}: {answer.get('error')}"
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts of the loaded rules (pending or firing), as /api/v1/alerts lists them."""
        answer = httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()
        assert answer.get("status") == "success", answer.get("error")
        alerts: list[dict[str, Any]] = answer["data"]["alerts"]
        return alerts

    def targets_up(self) -> dict[str, bool]:
        answer = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()
        return {t["scrapeUrl"]: t["health"] == "up" for t in answer["data"]["activeTargets"]}


@contextmanager
def running(
    targets: Mapping[str, list[str]], folder: Path, rule_files: Sequence[Path] = ()
) -> Iterator[Prometheus]:
    """Prometheus scraping `targets` (scrape job → host:port list) every second until the
    context ends, with nothing but the defaults in each scrape configuration; with
    `rule_files`, it loads them and evaluates their rules every second too."""
    exe = binary()
    assert exe.is_file(), f"no Prometheus at {exe}: run `make test` or scripts/ensure-prometheus.sh"
    config = {
        "global": {
            "scrape_interval": f"{SCRAPE_INTERVAL_S}s",
            "scrape_timeout": "1s",
            "evaluation_interval": f"{SCRAPE_INTERVAL_S}s",
        },
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": hosts}]}
            for job, hosts in targets.items()
        ],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = ports.free_port()
    log = (folder / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            str(exe),
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"Prometheus exited; see {folder / 'prometheus.log'}"
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Prometheus was not ready within 60 s"
            time.sleep(0.3)
        yield Prometheus(url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
