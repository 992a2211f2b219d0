"""Integration tier: real kube-apiserver + etcd (see the wt_envtest package in testkit/)."""
