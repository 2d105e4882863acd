"""hfc's ``Client`` (fabric-sdk-py 1.0.0) built from a connection profile of ``network.sh profile``.

Needs ``pip install -e '.[hfc]'`` (``setup.sh`` installs it) and a process of its own started with
``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python``: hfc's generated protobufs predate protobuf 4's
C++/upb runtime, and they register the same proto symbols as ``fabric_protos`` (which the rest of
fedfabric uses), so the two cannot share a process::

    with open_session("profiles/org1/connection-org1.json", "profiles/org1/identity-User1.json") as s:
        s.run(s.client.chaincode_query(requestor=s.user, channel_name=s.channel,
                                       peers=s.peers_of("org1"), fcn="get", args=["k"], cc_name="cc"))

What this adapts, each at hfc's own extension points (no hfc code is changed):

* URLs: hfc hands a peer's or orderer's ``url`` to gRPC as the target, so the profile's
  ``grpcs://host:port`` becomes ``host:port`` (TLS comes from ``tlsCACerts.path``, which the profile
  also carries); of ``grpcOptions`` only the real gRPC channel options (``grpc.*``) are passed on.
* The identity: hfc's users live in a key-value "state store" that pickles the user *with its
  private key in PEM*; its file store writes that to disk with the process umask (0644 here). The
  user is built here with an in-memory store instead: the key is read from its path and never written.
* The event loop: aiogrpc binds every channel to the event loop current when it is created, so the
  session creates its own loop first and runs every hfc coroutine on it (``session.run``).
* Logging: ``hfc.fabric.client`` sets itself to DEBUG with a console handler at import (every
  proposal and the user's key path); hfc's loggers are set to ERROR.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, TypeVar

T = TypeVar("T")


class HfcError(RuntimeError):
    """hfc cannot be used in this process or with this profile; the message says why."""


def _check_process() -> None:
    if "fabric_protos" in sys.modules:
        raise HfcError("fabric_protos is already imported in this process: hfc's protobufs clash with it; "
                       "run hfc in a process of its own")
    from google.protobuf.internal import api_implementation

    if api_implementation.Type() != "python":
        raise HfcError("hfc needs the pure-Python protobuf runtime: start the process with "
                       "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python (before anything imports protobuf)")
    try:
        import hfc.fabric  # noqa: F401
    except ImportError as exc:
        raise HfcError(f"hfc's Client cannot be imported ({exc}); install it with `setup.sh` "
                       "(pip install -e '.[hfc]' and pip install --no-deps fabric-sdk-py==1.0.0)") from None


def hfc_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """The connection profile in the form hfc 1.0.0 reads (see the module docstring)."""
    out = json.loads(json.dumps(profile))
    for section in ("peers", "orderers"):
        for name, node in out.get(section, {}).items():
            url = node["url"]
            if "://" in url:
                scheme, _, url = url.partition("://")
                if scheme != "grpcs":
                    raise HfcError(f"{section}.{name}.url: {node['url']!r} is not grpcs://; hfc needs TLS here")
            node["url"] = url
            if "path" not in node.get("tlsCACerts", {}):
                raise HfcError(f"{section}.{name}.tlsCACerts has no path: hfc reads TLS CA certificates from files")
            node["grpcOptions"] = {k: v for k, v in node.get("grpcOptions", {}).items() if k.startswith("grpc.")}
            node["grpcOptions"].setdefault("grpc.ssl_target_name_override", name)
    return out


def _memory_store() -> Any:
    """An hfc ``KeyValueStore`` kept in memory (hfc pickles users, private key included, into it)."""
    import rx
    from hfc.util.keyvaluestore import KeyValueStore

    class MemoryStore(KeyValueStore):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self._values: dict[str, Any] = {}

        def set_value(self, key: str, value: Any) -> bool:
            self._values[key] = value
            return True

        def get_value(self, key: str) -> Any:
            return self._values.get(key)

        def async_set_value(self, key: str, value: Any, scheduler: Any = None) -> Any:
            return rx.of(self.set_value(key, value))

        def async_get_value(self, key: str, scheduler: Any = None) -> Any:
            return rx.of(self.get_value(key))

    return MemoryStore()


@dataclass
class HfcSession:
    """An hfc ``Client`` from a profile, the profile's user, and the event loop every call runs on."""

    client: Any
    user: Any
    channel: str
    profile: dict[str, Any]
    loop: asyncio.AbstractEventLoop

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run one hfc coroutine (``client.chaincode_invoke(...)`` etc.) to completion."""
        return self.loop.run_until_complete(awaitable)

    def peers_of(self, *orgs: str) -> list[str]:
        """Peer names of these orgs (all orgs when none is named), as hfc's ``peers=`` wants them."""
        names = orgs or tuple(self.profile["organizations"])
        return [p for o in names for p in self.profile["organizations"][o]["peers"]]

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.run(self.client.close_grpc_channels())
        self.loop.close()

    def __enter__(self) -> "HfcSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_session(profile_path: str | Path, identity_path: str | Path) -> HfcSession:
    """hfc's ``Client`` for the profile's org, acting as the identity of ``identity-<user>.json``."""
    _check_process()
    from hfc.fabric import Client
    from hfc.fabric.user import create_user

    for name in list(logging.root.manager.loggerDict):
        if name == "hfc" or name.startswith("hfc."):
            logging.getLogger(name).setLevel(logging.ERROR)
    profile = json.loads(Path(profile_path).read_text())
    identity = json.loads(Path(identity_path).read_text())
    org = profile["client"]["organization"]
    if identity.get("organization") != org:
        raise HfcError(f"{identity_path} is an identity of {identity.get('organization')!r}, the profile is {org!r}'s")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    fd, tmp = tempfile.mkstemp(prefix="hfc-profile-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(hfc_profile(profile), fh)
        client = Client(net_profile=tmp)
    finally:
        os.unlink(tmp)
    channel = next(iter(profile["channels"]))
    client.new_channel(channel)
    user = create_user(identity["name"], org, _memory_store(), identity["mspId"],
                       identity["privateKey"]["path"], identity["certificate"]["path"])
    return HfcSession(client=client, user=user, channel=channel, profile=profile, loop=loop)
