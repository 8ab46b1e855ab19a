"""The pure core of auditwarden.

Everything below this package is plain Python that performs no I/O: it parses audit
policies and apiserver configurations that callers hand it as text or objects, evaluates
them the way kube-apiserver does, and decides verdicts.  The CLI, the Flask app and the
Kubernetes lookups are thin adapters around it (import-linter enforces this, see
pyproject.toml).
"""
