"""auditwarden: keep kube-apiserver audit logging switched on and meaningful."""

__version__ = "0.1.0"
