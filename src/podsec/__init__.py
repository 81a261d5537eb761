"""podsec: Kubernetes securityContext made real on one machine."""

__version__ = "0.1.0"
