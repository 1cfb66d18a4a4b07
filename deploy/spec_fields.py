"""The building blocks of the FlinkJob model: its base class (camelCase on the wire, unknown
fields refused) and the field types that carry their own checks — durations, a job's entry
point, Flink configuration values. deploy.spec re-exports them."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from jobs.flags import duration_ms

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", validate_default=True
    )


MAX_DURATION_MS = 366 * 86_400_000


def _check_duration(text: str) -> str:
    if duration_ms(text) > MAX_DURATION_MS:  # ValueError names a text that is no duration
        raise ValueError(f"{text!r} is longer than a year")
    return text


Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    Field(json_schema_extra={"pattern": r"^\s*\d+\s*(ms|s|m|h|d)\s*$"}),
]


def seconds(duration: str) -> float:
    return duration_ms(duration) / 1000.0


def milliseconds(duration: str) -> int:
    return duration_ms(duration)


def _check_entry(entry: str) -> str:
    """A module under jobs/ (`jobs.ledger`) or a relative `.py` path; never `..` or absolute.

    Where a file really resolves (symlinks) is checked against the allowed folders at submit
    time, by `deploy.flink.entries`, because only the machine that runs it can tell.
    """
    if entry.endswith(".py"):
        path = PurePosixPath(entry)
        if path.is_absolute() or entry.startswith("~") or "\\" in entry:
            raise ValueError(f"{entry!r}: a job file must be a path relative to the project")
        if ".." in path.parts:
            raise ValueError(f"{entry!r}: '..' is not allowed in a job path")
        return entry
    if not _MODULE.match(entry) or not entry.startswith("jobs."):
        raise ValueError(
            f"{entry!r}: use a module under jobs/ (e.g. jobs.ledger) or a relative path to a "
            ".py file inside an allowed folder"
        )
    return entry


def _config_value(value: Any) -> Any:
    """Flink configuration is strings; YAML gives numbers and booleans for some of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


JobEntry = Annotated[str, AfterValidator(_check_entry)]
ConfigValue = Annotated[str, BeforeValidator(_config_value)]
