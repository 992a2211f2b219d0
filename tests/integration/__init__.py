"""Integration tier: real kube-apiserver + etcd (see tests/kube.py)."""
