"""What the cluster changes on the host, and how each change is undone: the bridge and its
routes, our iptables rules (and the chains kubelet and kube-proxy leave), kernel settings,
mounts under the cluster folder, the kubepods cgroups and the pods' network namespaces.

Each undo works from what is on the host now, not from what a run recorded, so a run that was
killed half-way is cleaned up by the next `up` or `down`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
from pathlib import Path

from deploy.errors import ClusterError
from deploy.localkube.layout import (
    BRIDGE,
    GATEWAY,
    POD_CIDR,
    RULE_COMMENT,
    SERVICE_CIDR,
    SYSCTLS,
)
from deploy.localkube.procs import run

# Chains kubelet creates that `kube-proxy --cleanup` does not remove.
KUBELET_CHAINS = ("KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT")
PROC_SYS = Path("/proc/sys")
CGROUP_ROOT = Path("/sys/fs/cgroup")


# --- kernel settings ----------------------------------------------------------------------------


def read_sysctls() -> dict[str, str]:
    values = {}
    for key in SYSCTLS:
        with contextlib.suppress(OSError):
            values[key] = (PROC_SYS / key).read_text().strip()
    return values


def write_sysctl(key: str, value: str) -> None:
    (PROC_SYS / key).write_text(value)


def restore_sysctls(saved: dict[str, str]) -> list[str]:
    """Put back every saved value that differs; the keys changed."""
    changed = []
    now = read_sysctls()
    for key, value in saved.items():
        if now.get(key) != value:
            write_sysctl(key, value)
            changed.append(key)
    return changed


# --- network ------------------------------------------------------------------------------------


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def check_subnets_free() -> None:
    """Refuse, in one line, if another interface already routes our pod or Service subnet."""
    ours = [ipaddress.ip_network(POD_CIDR), ipaddress.ip_network(SERVICE_CIDR)]
    for line in run(["ip", "-4", "-o", "route", "show"]).splitlines():
        dest, _, rest = line.partition(" ")
        if dest == "default" or f"dev {BRIDGE}" in rest:
            continue
        with contextlib.suppress(ValueError):
            net = ipaddress.ip_network(dest, strict=False)
            for mine in ours:
                if net.overlaps(mine):
                    raise ClusterError(
                        f"the subnet {mine} is taken: route `{line.strip()}` on this machine "
                        "overlaps it (remove it, or stop what created it)"
                    )


def create_bridge() -> None:
    if not link_exists(BRIDGE):
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    prefix = ipaddress.ip_network(POD_CIDR).prefixlen
    addrs = run(["ip", "-4", "-o", "addr", "show", "dev", BRIDGE])
    if f"{GATEWAY}/{prefix}" not in addrs:
        run(["ip", "addr", "add", f"{GATEWAY}/{prefix}", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])
    # Service IPs are virtual (kube-proxy rewrites them); one that matches no rule goes to the
    # bridge and stops there instead of following the default route off the machine.
    run(["ip", "route", "replace", SERVICE_CIDR, "dev", BRIDGE])


def delete_bridge() -> None:
    with contextlib.suppress(ClusterError):
        run(["ip", "route", "del", SERVICE_CIDR, "dev", BRIDGE])
    if link_exists(BRIDGE):
        run(["ip", "link", "delete", BRIDGE])


NETNS_DIR = Path("/run/netns")


def netns_dir_mounted() -> bool:
    return any(
        line.split()[1] == str(NETNS_DIR)
        for line in Path("/proc/self/mounts").read_text().splitlines()
    )


def share_netns_dir() -> bool:
    """Make /run/netns a shared mount of itself before any pod's network namespace is made there
    (what `ip netns add` does on first use). Otherwise an `ip netns add` while pods run mounts
    over the folder, hides their namespaces' mounts, and kubelet can never remove those pods
    ("unlinkat /var/run/netns/cni-…: device or resource busy"). True if this call mounted it."""
    if netns_dir_mounted():
        return False
    NETNS_DIR.mkdir(parents=True, exist_ok=True)
    run(["mount", "--bind", str(NETNS_DIR), str(NETNS_DIR)])
    run(["mount", "--make-shared", str(NETNS_DIR)])
    return True


def unshare_netns_dir() -> None:
    """Undo share_netns_dir once no namespace is mounted below it."""
    busy = [m for m in mounts_under(NETNS_DIR) if m != str(NETNS_DIR)]
    if not busy and netns_dir_mounted():
        run(["umount", str(NETNS_DIR)])


def netns_names() -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return sorted(p.name for p in Path("/var/run/netns").iterdir())
    return []


# --- iptables -----------------------------------------------------------------------------------

# Pods may talk to each other, to Services and to this machine (INPUT), nothing else: a packet
# from the bridge that would be forwarded to another interface is rejected; so is one from
# another interface to the pods.
FORWARD_RULES = (
    ["-i", BRIDGE, "!", "-o", BRIDGE],
    ["!", "-i", BRIDGE, "-o", BRIDGE],
)


def _rule(spec: list[str]) -> list[str]:
    return [*spec, "-m", "comment", "--comment", RULE_COMMENT, "-j", "REJECT"]


def ensure_forward_rules() -> None:
    """Our REJECT rules first in FORWARD (kube-proxy inserts its chains at the top: call this
    after it started, and again after anything that re-inserts them)."""
    for spec in reversed(FORWARD_RULES):
        with contextlib.suppress(ClusterError):
            while True:
                run(["iptables", "-D", "FORWARD", *_rule(spec)])
        run(["iptables", "-I", "FORWARD", "1", *_rule(spec)])


# The jumps kube-proxy (iptables mode) puts into FORWARD. It adds them one after another within
# a sync, each at the top; ours go back in front only once all are there (one run had ours put
# first between two of them, and KUBE-PROXY-FIREWALL then landed above them).
KUBE_PROXY_FORWARD_JUMPS = (
    "-j KUBE-PROXY-FIREWALL",
    "-j KUBE-FORWARD",
    "-j KUBE-SERVICES",
    "-j KUBE-EXTERNAL-SERVICES",
)


def kube_proxy_synced() -> bool:
    rules = run(["iptables", "-S", "FORWARD"])
    return all(jump in rules for jump in KUBE_PROXY_FORWARD_JUMPS)


def forward_rules_first() -> bool:
    lines = [ln for ln in run(["iptables", "-S", "FORWARD"]).splitlines() if ln.startswith("-A")]
    head = lines[: len(FORWARD_RULES)]
    return len(head) == len(FORWARD_RULES) and all(RULE_COMMENT in ln for ln in head)


def remove_our_rules() -> None:
    for cmd in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle", "raw"):
            with contextlib.suppress(ClusterError):
                for line in run([cmd, "-t", table, "-S"]).splitlines():
                    if RULE_COMMENT in line and line.startswith("-A "):
                        run([cmd, "-t", table, "-D", *_split(line[3:])])


def kube_chains_present() -> bool:
    try:
        return any(
            ln.startswith("-N KUBE-") or RULE_COMMENT in ln
            for ln in run(["iptables", "-S"]).splitlines()
        )
    except ClusterError:
        return False


def remove_kube_chains() -> None:
    """Drop every KUBE-* chain (and the rules that jump to them) kubelet or kube-proxy left."""
    for cmd in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle", "raw"):
            try:
                rules = run([cmd, "-t", table, "-S"]).splitlines()
            except ClusterError:
                continue
            chains = [ln.split()[1] for ln in rules if ln.startswith("-N KUBE-")]
            if not chains:
                continue
            for line in rules:
                jumps = any(f"-j {c}" in line or f"--jump {c}" in line for c in chains)
                if line.startswith("-A ") and not line.split()[1].startswith("KUBE-") and jumps:
                    run([cmd, "-t", table, "-D", *_split(line[3:])], check=False)
            for chain in chains:
                run([cmd, "-t", table, "-F", chain], check=False)
            for chain in chains:
                run([cmd, "-t", table, "-X", chain], check=False)


def _split(rule: str) -> list[str]:
    # iptables -S quotes comments with spaces; ours has none, kube-proxy's do.
    return [t.strip('"') for t in re.findall(r'"[^"]*"|\S+', rule)]


# --- mounts, cgroups ----------------------------------------------------------------------------


def mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1].replace("\\040", " ")
        if target == prefix or target.startswith(prefix + "/"):
            found.append(target)
    return found


def unmount_under(root: Path) -> None:
    """Unmount everything below `root`, deepest first (pod volumes, overlay rootfs, kubelet's
    bind mount of its own folder)."""
    for _ in range(5):
        targets = sorted(set(mounts_under(root)), key=lambda t: t.count("/"), reverse=True)
        if not targets:
            return
        for target in targets:
            run(["umount", "-l", target], check=False)
    left = mounts_under(root)
    if left:
        raise ClusterError(f"could not unmount: {', '.join(left)}")


def kubepods_cgroups() -> list[Path]:
    found: list[Path] = []
    with contextlib.suppress(FileNotFoundError):
        for controller in CGROUP_ROOT.iterdir():
            found.extend(sorted(controller.glob("kubepods*")))
    return found


def remove_kubepods_cgroups() -> None:
    """rmdir the kubepods hierarchies depth-first (they are empty once no container runs)."""
    for top in kubepods_cgroups():
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*dirs, top]:
            with contextlib.suppress(FileNotFoundError):
                try:
                    d.rmdir()
                except OSError as e:
                    raise ClusterError(f"cgroup {d} is still in use: {e}") from None


# --- a picture of the host, to check teardown leaves it as it was --------------------------------


def snapshot(root: Path) -> dict[str, object]:
    """What `down` must put back: links, addresses, routes, iptables rules, mounts under the
    cluster folder, kubepods cgroups, network namespaces, kernel settings."""

    def rules(cmd: str) -> list[str]:
        out = run([f"{cmd}-save"], check=False)
        return sorted(
            ln for ln in out.splitlines() if ln and not ln.startswith(("#", ":", "COMMIT", "*"))
        )

    return {
        "links": sorted(ln.split(":")[1].strip() for ln in run(["ip", "-o", "link"]).splitlines()),
        "routes": sorted(run(["ip", "-4", "route"]).splitlines()),
        "iptables": rules("iptables"),
        "ip6tables": rules("ip6tables"),
        "mounts": mounts_under(root) + mounts_under(NETNS_DIR),
        "cgroups": [str(p) for p in kubepods_cgroups()],
        "netns": netns_names(),
        "sysctls": read_sysctls(),
    }


def diff_snapshots(before: dict[str, object], after: dict[str, object]) -> list[str]:
    """Human-readable differences (empty when the host is as it was)."""
    out = []
    for key, value in before.items():
        if value != after.get(key):
            out.append(f"{key}: before {json.dumps(value)}\n  after {json.dumps(after.get(key))}")
    return out


def is_root() -> bool:
    return os.geteuid() == 0
