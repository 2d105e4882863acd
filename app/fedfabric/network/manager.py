"""``up | down | status | logs``: the network's life cycle, idempotent and honest about failures."""

from __future__ import annotations

import fcntl
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from . import ca as fabricca, channel, deploy as ccdeploy, identities, lifecycle, material, nodes, paths
from .config import ConsortiumConfig, load_config
from .fabricbin import FabricInstall, locate
from .layout import Layout
from .nodes import NodeError, NodeSpec

Report = Callable[[str], None]


@dataclass
class NodeStatus:
    node_id: str
    kind: str
    up: bool
    pid: int | None
    ports: dict[str, int]
    height: int | None
    health: str


class Network:
    """One consortium network on this machine, described by a config and living in a run dir."""

    def __init__(self, config: ConsortiumConfig | None = None, run_root: Path | None = None,
                 fabric: FabricInstall | None = None, report: Report | None = None) -> None:
        self.config = config or load_config(paths.DEFAULT_CONFIG)
        self.layout = Layout((run_root or paths.run_dir()).resolve(), self.config)
        self._fabric = fabric
        self.report = report or (lambda msg: None)

    @property
    def fabric(self) -> FabricInstall:
        if self._fabric is None:
            self._fabric = locate()
        return self._fabric

    # -- node specs ------------------------------------------------------------------------
    def orderer_specs(self) -> list[NodeSpec]:
        return [nodes.orderer_spec(self.fabric, self.config, self.layout, o)
                for o in self.config.orderer_org.orderers]

    def peer_specs(self) -> list[NodeSpec]:
        return [nodes.peer_spec(self.fabric, self.config, self.layout, org) for org in self.config.orgs]

    def ca_specs(self) -> list[NodeSpec]:
        """Each org's Fabric CA server."""
        return [fabricca.ca_spec(self.fabric, self.config, self.layout, org) for org in self.config.orgs]

    def chaincode_specs(self, state: dict | None = None) -> list[NodeSpec]:
        """Servers of every chaincode deployed from this run dir."""
        state = state if state is not None else nodes.load_state(self.layout)
        out = []
        for entry in state.get("chaincodes", {}).values():
            dep = ccdeploy.ChaincodeDeployment.from_json(entry["deployment"])
            for org in self.config.orgs:
                out.append(ccdeploy.server_spec(self.config, self.layout, dep, org,
                                                entry["package_ids"][org.name]))
        return out

    def specs(self) -> list[NodeSpec]:
        return self.orderer_specs() + self.peer_specs() + self.ca_specs() + self.chaincode_specs()

    # -- locking and state -----------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[dict]:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        with open(self.layout.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = nodes.load_state(self.layout)
            try:
                yield state
            finally:
                if self.layout.root.exists():
                    nodes.save_state(self.layout, state)

    def running_pid(self, state: dict, node_id: str) -> int | None:
        pid = state.get("nodes", {}).get(node_id, {}).get("pid")
        if pid and nodes.is_our_process(pid, node_id, self.layout.root):
            return int(pid)
        return None

    # -- up ----------------------------------------------------------------------------------
    def up(self) -> None:
        """Bring the network up (or finish bringing it up); a no-op when it already runs."""
        self.fabric.check()
        t0 = time.monotonic()
        with self._locked() as state:
            state.setdefault("nodes", {})
            specs = self.orderer_specs() + self.peer_specs() + self.ca_specs()
            to_start = {s.node_id for s in specs if self.running_pid(state, s.node_id) is None}
            external = {s.node_id for s in specs if s.node_id in to_start and self._healthy_elsewhere(s)}
            for node_id in sorted(external):
                self.report(f"{node_id} already runs outside this tool (e.g. docker compose): left alone")
            to_start -= external
            self._preflight_ports([s for s in specs if s.node_id in to_start])
            self._generate()

            # the CAs need nothing from the channel: they start (and get health-checked) with the orderers
            started = self._start_all(state, [s for s in self.orderer_specs() + self.ca_specs()
                                              if s.node_id in to_start])
            for o in self.config.orderer_org.orderers:
                if channel.orderer_channel_info(self.fabric, self.config, self.layout, o) is None:
                    channel.orderer_join(self.fabric, self.config, self.layout, o)
                    self.report(f"{o.name} joined channel '{self.config.channel}' (osnadmin)")
            started += self._start_all(state, [s for s in self.peer_specs() if s.node_id in to_start])
            for org in self.config.orgs:
                if self.config.channel not in channel.peer_channels(self.fabric, self.config,
                                                                   self.layout, org):
                    channel.peer_join(self.fabric, self.config, self.layout, org)
                    self.report(f"{org.peer.name}.{org.name} joined channel '{self.config.channel}'")
            self._wait_same_height()
            started += self._start_all(state, [s for s in self.chaincode_specs(state)
                                               if self.running_pid(state, s.node_id) is None])
        if started:
            self.report(f"network up: {len(started)} node(s) started in {time.monotonic() - t0:.1f}s")
        else:
            self.report("network already up: nothing to do")

    def generate(self) -> None:
        """Crypto material, node configuration and the genesis block; no process is started."""
        self.fabric.check()
        with self._locked():
            self._generate()

    def _generate(self) -> None:
        material.ensure_fabric_config(self.fabric, self.layout)
        if material.ensure_crypto(self.fabric, self.config, self.layout):
            self.report("crypto material generated (cryptogen)")
        identities.ensure_role_identities(self.config, self.layout)
        fabricca.ensure_ca_material(self.config, self.layout)
        if material.ensure_genesis_block(self.fabric, self.config, self.layout):
            self.report(f"genesis block for channel '{self.config.channel}' written (configtxgen)")

    def _healthy_elsewhere(self, spec: NodeSpec) -> bool:
        """A node not started by us that answers healthy on its operations port (compose, systemd)."""
        if spec.tls_ca is None or not spec.tls_ca.exists():
            return False
        return nodes.healthz(spec, timeout=1.0)[0]

    def _preflight_ports(self, specs: list[NodeSpec]) -> None:
        for spec in specs:
            for kind, port in spec.ports.items():
                if nodes.port_in_use(self.config.host, port):
                    raise NodeError(f"{spec.node_id}: {kind} port {self.config.host}:{port} is already in "
                                    "use by another process; free it or change it in consortium.yaml")

    def _start_all(self, state: dict, specs: list[NodeSpec]) -> list[str]:
        procs = []
        for spec in specs:
            proc = nodes.start(spec, self.layout)
            state["nodes"][spec.node_id] = {"pid": proc.pid, "kind": spec.kind,
                                            "log": str(self.layout.log_file(spec.node_id))}
            procs.append((spec, proc))
            self.report(f"started {spec.node_id} (pid {proc.pid})")
        try:
            for spec, proc in procs:
                nodes.wait_healthy(spec, proc, self.layout)
                self.report(f"{spec.node_id} healthy")
        except NodeError:
            for spec, proc in procs:   # leave nothing half-started behind
                nodes.stop_pid(proc.pid, grace=5)
                state["nodes"].pop(spec.node_id, None)
            raise
        return [s.node_id for s, _ in procs]

    def _wait_same_height(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        heights: dict[str, int | None] = {}
        while time.monotonic() < deadline:
            heights = self.heights()
            values = set(heights.values())
            if len(values) == 1 and None not in values:
                return
            time.sleep(0.5)
        raise NodeError(f"nodes did not converge on one channel height within {timeout:.0f}s: {heights}")

    def heights(self) -> dict[str, int | None]:
        """Block height of the channel on every orderer and peer."""
        out: dict[str, int | None] = {}
        for o in self.config.orderer_org.orderers:
            try:
                info = channel.orderer_channel_info(self.fabric, self.config, self.layout, o)
            except Exception:   # node down: reported as unknown height
                info = None
            out[o.name] = int(info["height"]) if info else None
        for org in self.config.orgs:
            out[f"{org.peer.name}.{org.name}"] = channel.peer_height(self.fabric, self.config,
                                                                     self.layout, org)
        return out

    # -- deploy ----------------------------------------------------------------------------
    def deploy(self, dep: "ccdeploy.ChaincodeDeployment") -> int:
        """Package, install, approve, commit (new sequence when anything changed) and start the
        chaincode servers. Returns the committed sequence."""
        t0 = time.monotonic()
        with self._locked() as state:
            down = [s.node_id for s in self.orderer_specs() + self.peer_specs()
                    if self.running_pid(state, s.node_id) is None]
            if down:
                raise NodeError(f"cannot deploy {dep.name!r}: network not up ({', '.join(down)} down); "
                                "run network/network.sh up")
            previous = state.setdefault("chaincodes", {}).get(dep.name)
            package_ids: dict[str, str] = {}
            for org in self.config.orgs:
                pkg, _ = ccdeploy.prepare_package(self.config, self.layout, dep, org)
                pkg_id = lifecycle.package_id(self.fabric, self.config, self.layout, org, pkg)
                if pkg_id not in lifecycle.installed_ids(self.fabric, self.config, self.layout, org):
                    lifecycle.install(self.fabric, self.config, self.layout, org, pkg)
                    self.report(f"installed {pkg_id[:40]}… on {org.peer.name}.{org.name}")
                package_ids[org.name] = pkg_id
            sequence, fingerprint, changed = ccdeploy.run_lifecycle(
                self.fabric, self.config, self.layout, dep, package_ids,
                previous["fingerprint"] if previous else None)
            if changed:
                self.report(f"chaincode {dep.name!r} v{dep.version} committed at sequence {sequence} "
                            f"(policy {dep.endorsement_policy(self.config)})")
            old = {s.node_id: s for s in self.chaincode_specs(state)}
            state["chaincodes"][dep.name] = {"deployment": dep.to_json(), "package_ids": package_ids,
                                             "sequence": sequence, "fingerprint": fingerprint}
            new_specs = [ccdeploy.server_spec(self.config, self.layout, dep, org, package_ids[org.name])
                         for org in self.config.orgs]
            to_start = []
            for spec in new_specs:
                pid = self.running_pid(state, spec.node_id)
                if pid is not None and (changed or old.get(spec.node_id) != spec):
                    nodes.stop_pid(pid)
                    self.report(f"stopped {spec.node_id} (pid {pid}) for redeploy")
                    pid = None
                if pid is None:
                    to_start.append(spec)
            self._preflight_ports(to_start)
            self._start_all(state, to_start)
        self.report(f"chaincode {dep.name!r} ready in {time.monotonic() - t0:.1f}s")
        return sequence

    # -- down --------------------------------------------------------------------------------
    def down(self, keep_state: bool = False) -> list[str]:
        """Stop exactly the processes this run dir started; remove generated state."""
        stopped = []
        if not self.layout.root.exists():
            return stopped
        with self._locked() as state:
            for node_id, info in sorted(state.get("nodes", {}).items(), key=_stop_order):
                pid = info.get("pid")
                if pid and nodes.is_our_process(pid, node_id, self.layout.root):
                    nodes.stop_pid(pid)
                    stopped.append(node_id)
                    self.report(f"stopped {node_id} (pid {pid})")
            state["nodes"] = {}
        if not keep_state:
            shutil.rmtree(self.layout.root, ignore_errors=True)
            self.report(f"removed {self.layout.root}")
        return stopped

    # -- status ------------------------------------------------------------------------------
    def status(self) -> list[NodeStatus]:
        state = nodes.load_state(self.layout)
        heights = self.heights() if self.layout.genesis_block.exists() else {}
        out = []
        for spec in self.orderer_specs() + self.peer_specs() + self.ca_specs() + self.chaincode_specs(state):
            pid = self.running_pid(state, spec.node_id)
            ok, detail = nodes.healthz(spec) if pid else (False, "not running")
            out.append(NodeStatus(spec.node_id, spec.kind, pid is not None and ok, pid, spec.ports,
                                  heights.get(spec.node_id) if pid else None,
                                  "OK" if ok else detail[:60]))
        return out

    def log_path(self, node_id: str) -> Path:
        known = [s.node_id for s in self.specs()]
        if node_id not in known:
            raise NodeError(f"unknown node {node_id!r}; known: {', '.join(known)}")
        return self.layout.log_file(node_id)


def _stop_order(item: tuple[str, dict]) -> tuple[int, str]:
    """Chaincode servers first, then peers, then orderers, then the CAs."""
    kind = item[1].get("kind", "")
    return ({"chaincode": 0, "peer": 1, "orderer": 2, "ca": 3}.get(kind, 4), item[0])
