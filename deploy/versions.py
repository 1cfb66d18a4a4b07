"""The versions of the parts Eddyline runs, read from where they are pinned."""

from __future__ import annotations

import re
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from xml.etree import ElementTree

from pyflink.version import __version__ as _flink_version

from deploy.paths import PROJECT_ROOT

POM = PROJECT_ROOT / "deploy" / "jvm" / "pom.xml"
_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def flink() -> str:
    return str(_flink_version)


@cache
def _pom_properties() -> dict[str, str]:
    root = ElementTree.parse(POM).getroot()  # noqa: S314 - our own file, not untrusted input
    props = root.find("m:properties", _NS)
    if props is None:
        return {}
    return {re.sub(r"^\{.*\}", "", el.tag): (el.text or "").strip() for el in props}


def kafka() -> str:
    return _pom_properties()["kafka.version"]


def flink_kafka_connector() -> str:
    return _pom_properties()["flink.kafka.connector.version"]


def flink_s3() -> str:
    """Flink's S3 filesystem plugin (2.2.0: no 2.2.1 was published)."""
    return _pom_properties()["flink.s3.version"]


def eddyline() -> str:
    try:
        return version("eddyline")
    except PackageNotFoundError:
        return "dev"
