"""A real single-node Kubernetes on this machine, for trying the chart and for the cluster tests.

`make cluster-up` / `make cluster-down` (python -m deploy.localkube up|down|status). Real kubelet,
kube-proxy and containerd + runc + the CNI bridge, the control plane and CoreDNS as host
processes, every file under one folder (.cache/cluster). Pods reach this machine only: forwarding
from the pod bridge to any other interface is rejected, and cluster DNS answers nothing outside
the cluster domain. Needs root.
"""
