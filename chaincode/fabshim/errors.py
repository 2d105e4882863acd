"""Shim exceptions."""


class ShimError(Exception):
    """A protocol or usage error inside the shim."""


class PeerError(ShimError):
    """The peer answered a stub request with ERROR."""
