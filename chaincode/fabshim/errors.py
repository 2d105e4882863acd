"""Shim exceptions."""


class ShimError(Exception):
    """A protocol or usage error inside the shim."""


class PeerError(ShimError):
    """The peer answered a stub request with ERROR."""


class PeerTimeout(ShimError):
    """The peer did not answer a stub request in time; the transaction was answered with ERROR."""
