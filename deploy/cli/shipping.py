"""`eddyline submit` for a job with its own code: resolve its requirements here, pack code and
dependencies into one zip (deploy/flink/artifacts.py) and put it where the cluster reads it —
the local stack's artifact folder, or with `--kube` the JobManager's jar upload, reached through
the Kubernetes API server's service proxy (no port-forward, no Ingress). The spec then names the
artifact (`spec.job.artifact`) and the controller ships it with the job (`python.files`)."""

from __future__ import annotations

import json
import os
import ssl
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx
from rich.markup import escape

from deploy.cli.common import EXIT_INVALID, err, fail
from deploy.errors import EddylineError, FlinkError, SpecError
from deploy.flink import artifacts, pipdeps
from deploy.flink.rest import FlinkClient
from deploy.spec import ArtifactSpec, FlinkJob

if TYPE_CHECKING:  # the Kubernetes client takes a second and a half to import: only for --kube
    from deploy.cli.options import JobTarget
    from deploy.kube.client import KubeTarget

ARTIFACTS_DIR = "artifacts"
JOBMANAGER_SERVICE_ENV = "EDDYLINE_JOBMANAGER_SERVICE"
DEFAULT_JOBMANAGER_SERVICE = "eddyline-jobmanager:8081"
UPLOAD_TIMEOUT_S = 600.0


class ShipError(EddylineError):
    """The artifact was packed but could not be put where the cluster reads it."""


def local_store(state_dir: Path) -> Path:
    return state_dir / ARTIFACTS_DIR


def pack(
    job: FlinkJob, base: Path, work: Path, progress: Callable[[str], None] | None = None
) -> artifacts.Packed:
    """The job's code and requirements (paths relative to `base`) as one checked zip in `work`;
    SpecError naming the field and the file when something is wrong."""
    spec = job.spec.job
    assert spec.code is not None
    code = base / spec.code
    requirements = base / spec.requirements if spec.requirements else None
    limits = artifacts.Limits.from_env()
    deps = work / "deps"
    deps.mkdir()
    files: dict[str, Path] = {}
    wheel = None
    if code.suffix == ".whl":
        if not code.is_file():
            raise artifacts.refuse("code", f"no such file: {code}")
        wheel = code
        code_names = _wheel_modules(code)
    else:
        files = artifacts.code_files(code)
        code_names = set(files)
    artifacts.check_entry(spec.entry, code_names)
    if requirements is not None or wheel is not None:
        pipdeps.install(deps, requirements, wheel, progress)
    dep_files = dict(artifacts.tree_files(deps, field="requirements"))
    # A requirement with a package of the code's name would merge into it, file by file.
    clash = artifacts.top_level(set(files)) & artifacts.top_level(set(dep_files))
    if clash:
        raise artifacts.refuse(
            "requirements",
            f"{', '.join(sorted(clash))} is both in job.code and in a requirement",
        )
    files.update(dep_files)
    if progress is not None:
        progress(f"packing {len(files)} files")
    packed = artifacts.write_zip(files, work / "artifact.zip", limits)
    artifacts.verify(packed.path, packed.sha256, limits, field="code")
    return packed


def _wheel_modules(wheel: Path) -> set[str]:
    """The names a wheel installs (its own code), minus its metadata."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        raise artifacts.refuse("code", f"{wheel} is not a wheel: {e}") from None
    return {n for n in names if not n.split("/", 1)[0].endswith((".dist-info", ".data"))}


def store_locally(packed: artifacts.Packed, state_dir: Path) -> ArtifactSpec:
    """Content-addressed under the stack's state folder, where the local JobManager and the
    controller read it: the same code twice is stored once."""
    folder = local_store(state_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{packed.sha256}.zip"
    if not dest.is_file() or artifacts.sha256_of(dest) != packed.sha256:
        staged = folder / f".{packed.sha256}.{os.getpid()}.tmp"
        staged.write_bytes(packed.path.read_bytes())
        staged.replace(dest)  # atomic: a reader sees the whole file or none
    return ArtifactSpec(
        uri=dest.as_uri(),
        store="local",
        sha256=packed.sha256,
        size=packed.size,
        native=packed.native,
    )


def upload(
    packed: artifacts.Packed,
    cluster: KubeTarget,
    service: str,
    before: ArtifactSpec | None,
) -> ArtifactSpec:
    """Into the JobManager's jar uploads (a `.jar` is a zip; Flink keeps it until the JobManager
    pod is replaced). Reused when the job's current artifact is the same and still there."""
    if packed.native:
        raise artifacts.refuse(
            "code",
            "the code or its requirements hold compiled extensions (.so); shipped through the "
            "JobManager's jar upload, Python imports them from a .jar (zipimport), which cannot "
            "load those. Use a pure-Python requirement, or build them into the image",
        )
    with jobmanager_client(cluster, service) as client:
        try:
            if before is not None and before.sha256 == packed.sha256 and _has(client, before):
                return before
            name = f"eddyline-artifact-{packed.sha256}.jar"
            path = _upload(client, packed.path, name)
        except FlinkError as e:
            hint = ""
            if e.status == 413:  # Flink's rest.server.max-content-length (100 MiB by default)
                hint = "; raise the JobManager's rest.server.max-content-length for larger ones"
            raise ShipError(
                f"could not upload the artifact to the JobManager ({service}) through the "
                f"Kubernetes API: {e}{hint}"
            ) from None
    return ArtifactSpec(
        uri=Path(path).as_uri(),
        store="jobmanager",
        sha256=packed.sha256,
        size=packed.size,
        native=packed.native,
    )


def _has(client: FlinkClient, artifact: ArtifactSpec) -> bool:
    jar_id = artifact.uri.rsplit("/", 1)[-1]
    return any(entry.get("id") == jar_id for entry in client.jars())


def _upload(client: FlinkClient, zip_path: Path, name: str) -> str:
    """The JobManager's path of the uploaded file (Flink answers with it)."""
    path = client.upload_artifact(zip_path, name)
    if not path.startswith("/"):
        raise ShipError(f"the JobManager stored the artifact at {path!r}, not an absolute path")
    return path


def jobmanager_client(cluster: KubeTarget, service: str) -> FlinkClient:
    """Flink's REST API through the API server's service proxy, with the kubeconfig's own
    credentials (client certificate or bearer token)."""
    from deploy.kube.client import connect  # noqa: PLC0415 - see TYPE_CHECKING above

    api = connect(cluster)
    conf: Any = api.api_client.configuration
    name, _, port = service.partition(":")
    try:
        port_name = _port_name(_service(api.api_client, api.namespace, name), port or "8081")
    finally:
        api.close()
    where = f"{name}:{port_name}" if port_name else name
    base = f"{conf.host}/api/v1/namespaces/{api.namespace}/services/{where}/proxy"
    # A context always, so that a client certificate is presented even when the kubeconfig
    # skips verifying the server (insecure-skip-tls-verify).
    verify = ssl.create_default_context(cafile=conf.ssl_ca_cert or None)
    if not conf.verify_ssl:
        verify.check_hostname = False
        verify.verify_mode = ssl.CERT_NONE
    if conf.cert_file:
        verify.load_cert_chain(conf.cert_file, conf.key_file)
    auth = conf.get_api_key_with_prefix("BearerToken") or conf.get_api_key_with_prefix(
        "authorization"
    )
    transport = _AuthTransport(httpx.HTTPTransport(verify=verify), auth)
    return FlinkClient(base, timeout=UPLOAD_TIMEOUT_S, transport=transport)


def _service(api_client: Any, namespace: str, name: str) -> dict[str, Any]:
    from kubernetes import client  # noqa: PLC0415 - the kubernetes client loads slowly

    try:
        answer = client.CoreV1Api(api_client).read_namespaced_service(
            name, namespace, _preload_content=False, _request_timeout=30
        )
    except Exception as e:  # ApiException (404, 403), connection errors
        raise ShipError(
            f"cannot read the JobManager Service {name!r} in namespace {namespace} (set "
            f"{JOBMANAGER_SERVICE_ENV}=<service>:<port> if the release is named otherwise): {e}"
        ) from None
    doc: dict[str, Any] = json.loads(cast(Any, answer).data)
    return doc


def _port_name(service: dict[str, Any], port: str) -> str:
    """The API server's proxy names a Service's port by its name (empty when it has one port
    and no name)."""
    for p in service.get("spec", {}).get("ports", []):
        if port in (str(p.get("port")), p.get("name")):
            return str(p.get("name") or "")
    raise ShipError(f"the Service {service.get('metadata', {}).get('name')} has no port {port}")


class _AuthTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, authorization: str | None) -> None:
        self.inner = inner
        self.authorization = authorization

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.authorization:
            request.headers["Authorization"] = self.authorization
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def ship(
    job: FlinkJob,
    base: Path,
    *,
    state_dir: Path,
    cluster: KubeTarget | None,
    before: FlinkJob | None,
    progress: Callable[[str], None] | None = None,
) -> FlinkJob:
    """`job` with spec.job.artifact set to its packed, stored code and requirements."""
    with tempfile.TemporaryDirectory(prefix="eddyline-pack-") as tmp:
        packed = pack(job, base, Path(tmp), progress)
        if cluster is None:
            artifact = store_locally(packed, state_dir)
        else:
            if progress is not None:
                progress(f"uploading {artifacts.human_size(packed.size)} to the JobManager")
            service = os.environ.get(JOBMANAGER_SERVICE_ENV, DEFAULT_JOBMANAGER_SERVICE)
            previous = before.spec.job.artifact if before is not None else None
            artifact = upload(packed, cluster, service, previous)
    return job.model_copy(
        update={"spec": job.spec.with_job(artifact=artifact)},
    )


def shipped(
    job: FlinkJob,
    spec_file: Path,
    source: str,
    target: JobTarget,
    before: FlinkJob | None,
    quiet: bool,
) -> FlinkJob:
    """`job` as the CLI submits it: with its own code (`job.code`), packed with its requirements
    and stored where the cluster reads them (paths relative to the spec file, or the current
    folder for stdin); exit 2 (nothing stored) when they are wrong, 1 when the cluster cannot take
    them. A job without code is returned as it is."""
    if job.spec.job.code is None:
        return job
    base = Path.cwd() if source == "stdin" else spec_file.resolve().parent
    with err.status("packing the job's code", spinner="dots") as status:

        def progress(line: str) -> None:
            if not quiet:
                status.update(escape(f"resolving requirements: {line[:100]}"))

        try:
            out = ship(
                job,
                base,
                state_dir=target.settings.state_dir,
                cluster=target.cluster,
                before=before,
                progress=progress,
            )
        except SpecError as e:
            raise fail(str(e).replace("spec is not", f"{source} is not"), EXIT_INVALID) from None
        except EddylineError as e:
            raise fail(e) from None
    artifact = out.spec.job.artifact
    assert artifact is not None
    if not quiet:
        err.print(
            f"artifact sha256:{artifact.sha256[:12]} ({artifacts.human_size(artifact.size)}) "
            f"stored at {artifact.uri}",
            highlight=False,
            soft_wrap=True,
        )
    return out
