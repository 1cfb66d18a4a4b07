"""Images on the node: no registry is reachable, so the pause image is packed here from the
static `pause` program, and the project's image (`make image`) is imported from its archive."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from deploy.localkube.layout import PAUSE_IMAGE, Layout
from deploy.localkube.procs import run


def pause_archive(pause_binary: Path, dest: Path) -> Path:
    """A `docker save`-format archive holding one layer with /pause as the entrypoint."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        data = pause_binary.read_bytes()
        info = tarfile.TarInfo("pause")
        info.size, info.mode, info.mtime = len(data), 0o755, 0
        tar.addfile(info, io.BytesIO(data))
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [PAUSE_IMAGE], "Layers": ["layer/layer.tar"]}]
    ).encode()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, mode="w") as out:
        for name, blob in (
            ("layer/layer.tar", layer_bytes),
            (config_name, config),
            ("manifest.json", manifest),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(blob), 0o644, 0
            out.addfile(info, io.BytesIO(blob))
    return dest


def normalised(ref: str) -> str:
    """The name containerd gives an image reference (Docker's defaults: docker.io/library)."""
    name = ref
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        name = f"docker.io/library/{ref}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{ref}"
    return name


def present(layout: Layout, ref: str) -> bool:
    out = run(ctr(layout, "images", "ls", "-q"))
    return normalised(ref) in out.split()


def import_archive(layout: Layout, archive: Path) -> None:
    run(ctr(layout, "images", "import", str(archive)), timeout=900)


def ctr(layout: Layout, *args: str) -> list[str]:
    """A `ctr` command line against our containerd, in the namespace kubelet uses."""
    return ["ctr", "--address", str(layout.containerd_socket), "--namespace", "k8s.io", *args]


# containerd's CRI (1.6.22 and 1.7 on) reports an image with this label as pinned, and kubelet's
# image garbage collector never removes a pinned image. Nothing can pull our images back (no
# registry). Debian's containerd 1.6.20 ignores the label: configs.kubelet turns image GC off.
PINNED_LABEL = "io.cri-containerd.pinned=pinned"


def pin(layout: Layout, ref: str) -> None:
    run(ctr(layout, "images", "label", normalised(ref), PINNED_LABEL))


def ensure_pause(layout: Layout, pause_binary: Path) -> None:
    if not present(layout, PAUSE_IMAGE):
        import_archive(layout, pause_archive(pause_binary, layout.images / "pause.tar"))
    pin(layout, PAUSE_IMAGE)


def load(layout: Layout, archive: Path, ref: str) -> bool:
    """Import `archive` (a `docker save` of `ref`) unless this very archive is already loaded.
    True if it imported."""
    stamp_file = layout.images / "loaded.json"
    stamps: dict[str, str] = {}
    if stamp_file.exists():
        stamps = json.loads(stamp_file.read_text())
    st = archive.stat()
    stamp = f"{st.st_size}:{st.st_mtime_ns}"
    if stamps.get(ref) == stamp and present(layout, ref):
        pin(layout, ref)
        return False
    import_archive(layout, archive)
    pin(layout, ref)
    stamps[ref] = stamp
    layout.images.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(json.dumps(stamps, indent=2))
    return True
