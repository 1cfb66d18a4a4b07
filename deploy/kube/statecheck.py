"""Can Flink use its state location? A check run before the JobManager starts (the chart's
`state-check` init container), so that a wrong endpoint, a missing bucket or refused credentials
is named in the pod's status at once, instead of a JobManager that retries for minutes and never
becomes ready.

It writes a small object under the location, reads it back and deletes it, with the credentials
Flink will use (the AWS SDK's default chain: the environment from the chart's Secret, or the
pod's cloud identity).

    python -m deploy.kube.statecheck s3://bucket/prefix/release \
        --endpoint http://host:9000 --path-style
"""

from __future__ import annotations

import secrets
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from deploy.errors import StateCheckError as StateCheckError  # noqa: PLC0414 - still importable from here

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def split_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> (bucket, "some/prefix"); s3a:// too."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("s3", "s3a") or not rest.split("/", 1)[0]:
        raise StateCheckError(f"{uri!r} is not an s3://bucket[/prefix] location")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")


def _client(endpoint: str | None, region: str | None, path_style: bool) -> S3Client:
    import boto3  # noqa: PLC0415 - only this check needs it
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        region_name=region or None,
        s3={"addressing_style": "path" if path_style else "auto"},
        connect_timeout=5,
        read_timeout=20,
        retries={"max_attempts": 2, "mode": "standard"},
    )
    return boto3.client("s3", endpoint_url=endpoint or None, config=config)


def check(
    uri: str,
    *,
    endpoint: str | None = None,
    region: str | None = None,
    path_style: bool = False,
    client: S3Client | None = None,
) -> str:
    """Write, read back and delete a probe object under `uri`; its key, or StateCheckError."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    bucket, prefix = split_uri(uri)
    key = "/".join(p for p in (prefix, f".eddyline-state-check/{secrets.token_hex(6)}") if p)
    where = f"{uri} (endpoint {endpoint or 'AWS S3'})"
    s3 = client or _client(endpoint, region, path_style)
    body = b"eddyline state check\n"
    step = "write to"
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        step = "read back from"
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if got != body:
            raise StateCheckError(f"cannot use {where}: read back other bytes than written")
        step = "delete from"
        s3.delete_object(Bucket=bucket, Key=key)
    except ClientError as e:
        error = e.response.get("Error", {})
        code = error.get("Code", "?")
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        message = error.get("Message") or str(e)
        raise StateCheckError(
            f"cannot {step} {where} for Flink's state: {code} (HTTP {status}): {message}"
        ) from None
    except BotoCoreError as e:
        raise StateCheckError(f"cannot {step} {where} for Flink's state: {e}") from None
    return key


def main(
    # `\\[`: typer reads help as rich markup, where `[/prefix]` is a closing tag (a crash).
    uri: Annotated[str, typer.Argument(help="the state location, s3://bucket\\[/prefix]")],
    endpoint: Annotated[str, typer.Option(help="the store's URL; empty for AWS S3")] = "",
    region: Annotated[str, typer.Option(help="the bucket's region")] = "",
    path_style: Annotated[bool, typer.Option(help="address buckets in the path")] = False,
    attempts: Annotated[int, typer.Option(min=1, help="tries, 5 s apart")] = 3,
) -> None:
    """Check that Flink's state location can be written, read and deleted; exit 1 naming the
    location and the store's answer when it cannot."""
    for attempt in range(1, attempts + 1):
        try:
            check(uri, endpoint=endpoint, region=region, path_style=path_style)
        except StateCheckError as e:
            if attempt == attempts:
                print(f"error: {e}", file=sys.stderr)
                raise typer.Exit(1) from None
            time.sleep(5)
        else:
            print(f"ok: {uri} can be written, read and deleted")
            return


if __name__ == "__main__":
    typer.run(main)
