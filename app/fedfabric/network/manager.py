"""``up | down | status | logs``: the network's life cycle, idempotent and honest about failures.

A :class:`SiteManager` is one *site*: the orgs whose homes its run directory holds (all of them, and the
orderer org, on one machine; one org on that org's own machine). Bringing a site up is the same
sequence of per-org steps either way: each org initializes its own home and publishes its definition
(``orginit``); the orderer org builds the genesis block from the definitions collected in ``public/``
and its orderers join the channel; each org starts its own Fabric CA and peer and joins its peer
(block 0 fetched from an orderer when the site does not have it).
"""

from __future__ import annotations

import fcntl
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from . import ca as fabricca, channel, deploy as ccdeploy, definition, lifecycle, material, nodes, orginit, paths
from .config import Batch, ConfigError, ConsortiumConfig, PeerOrg, load_config
from .fabricbin import FabricBinaryError, FabricInstall, locate
from .layout import Layout
from .nodes import NodeError, NodeSpec
from .private import private_dir

Report = Callable[[str], None]


@dataclass(frozen=True)
class ChannelState:
    """One node's view of the channel: its block height and, for an orderer, what osnadmin reports."""

    height: int | None
    status: str | None = None       # orderers: active | onboarding | inactive | failed
    relation: str | None = None     # orderers: consenter | follower | config-tracker


def convergence_problem(view: dict[str, ChannelState], min_height: int = 1) -> str | None:
    """Why ``view`` is not one agreed channel (None when it is): a node off the channel, an orderer
    that is not an active consenter, differing heights, or a height below ``min_height``."""
    missing = sorted(n for n, st in view.items() if st.height is None)
    if missing:
        return f"not on the channel or not answering: {', '.join(missing)}"
    odd = [f"{n} ({st.status}, {st.relation})" for n, st in sorted(view.items())
           if st.status is not None and (st.status, st.relation) != ("active", "consenter")]
    if odd:
        return f"orderers not active consenters: {', '.join(odd)}"
    heights = {n: st.height for n, st in view.items()}
    if len(set(heights.values())) != 1:
        return f"heights differ: {heights}"
    height = next(iter(heights.values()))
    if height is None or height < min_height:
        return f"every node at height {height}, expected at least {min_height}"
    return None


@dataclass
class NodeStatus:
    node_id: str
    kind: str
    up: bool
    pid: int | None
    ports: dict[str, int]
    height: int | None
    health: str
    metrics: str | None = None     # Prometheus scrape URL (orderers, peers, CAs), listed up or down


class SiteManager:
    """The local process manager of one site of a consortium network (not the Gateway's
    :class:`fedfabric.ledger.Network`, a channel seen by a client): the orgs (and maybe the orderer org) whose homes live in one
    run directory. ``orgs`` (peer org names) and ``orderer`` choose them the first time; the site
    remembers its choice (``state.json``). By default a site holds every org and the orderer org.
    ``launcher`` prefixes every node's command (``ip netns exec NS``: the site's nodes run in that
    network namespace)."""

    def __init__(self, config: ConsortiumConfig | None = None, run_root: Path | None = None,
                 fabric: FabricInstall | None = None, report: Report | None = None,
                 orgs: list[str] | None = None, orderer: bool | None = None,
                 launcher: tuple[str, ...] = ()) -> None:
        self.base_config = config or load_config(paths.DEFAULT_CONFIG)
        root = (run_root or paths.run_dir()).resolve()
        self.config = definition.site_config(self.base_config, root)
        self.layout = Layout(root, self.config)
        self._fabric = fabric
        self.report = report or (lambda msg: None)
        self.launcher = tuple(launcher)
        self.site = self._site(orgs, orderer)

    def _site(self, orgs: list[str] | None, orderer: bool | None) -> dict:
        saved = nodes.load_state(self.layout).get("site") if self.layout.state_file.exists() else None
        if orgs is None and orderer is None and saved:
            return saved
        names = [self.config.org(n).name for n in orgs] if orgs is not None else [o.name for o in self.config.orgs]
        return {"orgs": names, "orderer": orderer if orderer is not None else orgs is None}

    def refresh(self) -> None:
        """Re-read the org definitions and the orgs this site holds (after an org was initialized or
        imported, possibly by another process)."""
        self.config = definition.site_config(self.base_config, self.layout.root)
        self.layout = Layout(self.layout.root, self.config)
        saved = nodes.load_state(self.layout).get("site") if self.layout.state_file.exists() else None
        self.site = saved or self.site

    @property
    def local_orgs(self) -> list[PeerOrg]:
        """The peer orgs of this site, in consortium order."""
        names = set(self.site["orgs"])
        return [o for o in self.config.orgs if o.name in names]

    @property
    def hosts_orderer(self) -> bool:
        return bool(self.site["orderer"])

    @property
    def fabric(self) -> FabricInstall:
        if self._fabric is None:
            self._fabric = locate()
        return self._fabric

    # -- node specs ------------------------------------------------------------------------
    def orderer_specs(self) -> list[NodeSpec]:
        if not self.hosts_orderer:
            return []
        return [nodes.orderer_spec(self.fabric, self.config, self.layout, o)
                for o in self.config.orderer_org.orderers]

    def peer_specs(self) -> list[NodeSpec]:
        return [nodes.peer_spec(self.fabric, self.config, self.layout, org) for org in self.local_orgs]

    def ca_specs(self) -> list[NodeSpec]:
        """Each local org's Fabric CA server."""
        return [fabricca.ca_spec(self.fabric, self.config, self.layout, org) for org in self.local_orgs]

    def chaincode_specs(self, state: dict | None = None) -> list[NodeSpec]:
        """Servers of every chaincode deployed from this run dir."""
        state = state if state is not None else nodes.load_state(self.layout)
        out = []
        for entry in state.get("chaincodes", {}).values():
            dep = ccdeploy.ChaincodeDeployment.from_json(entry["deployment"])
            for org in self.local_orgs:
                if org.name in entry["package_ids"]:
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
            state["site"] = self.site
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
        """Bring the network up (or finish bringing it up); a no-op when it already runs.

        If it fails, every node this call started is stopped again (nodes that already ran are left
        alone) and the error names the node that failed and its log.
        """
        self.fabric.check()
        t0 = time.monotonic()
        started: list[str] = []
        with self._locked() as state:
            state.setdefault("nodes", {})
            try:
                self._up(state, started)
            except BaseException as exc:
                self._rollback(state, started, exc)
                raise
        if started:
            self.report(f"network up: {len(started)} node(s) started in {time.monotonic() - t0:.1f}s")
        else:
            self.report("network already up: nothing to do")

    def _up(self, state: dict, started: list[str]) -> None:
        specs = self.orderer_specs() + self.peer_specs() + self.ca_specs()
        to_start = {s.node_id for s in specs if self.running_pid(state, s.node_id) is None}
        external = {s.node_id for s in specs if s.node_id in to_start and self._healthy_elsewhere(s)}
        for node_id in sorted(external):
            self.report(f"{node_id} already runs outside this tool (e.g. docker compose): left alone")
        to_start -= external
        self._preflight_ports([s for s in specs if s.node_id in to_start])
        self._generate()
        # the CAs need nothing from the channel: they start (and get health-checked) with the orderers
        self._start_all(state, [s for s in self.orderer_specs() + self.ca_specs() if s.node_id in to_start],
                        started)
        self._join_orderers()
        self._start_all(state, [s for s in self.peer_specs() if s.node_id in to_start], started)
        self._join_peers()
        self._wait_same_height()
        self._start_all(state, [s for s in self.chaincode_specs(state)
                                if self.running_pid(state, s.node_id) is None], started)

    def _join_orderers(self) -> None:
        if not self.hosts_orderer:
            return
        for o in self.config.orderer_org.orderers:
            with self._joining(o.name):
                if channel.orderer_channel_info(self.fabric, self.config, self.layout, o) is None:
                    channel.orderer_join(self.fabric, self.config, self.layout, o)
                    self.report(f"{o.name} joined channel '{self.config.channel}' (osnadmin)")

    def _join_peers(self) -> None:
        for org in self.local_orgs:
            with self._joining(org.peer_node_id):
                if self.config.channel not in channel.peer_channels(self.fabric, self.config, self.layout, org):
                    channel.peer_join(self.fabric, self.config, self.layout, org)
                    self.report(f"{org.peer_node_id} joined channel '{self.config.channel}'")

    @contextmanager
    def _joining(self, node_id: str) -> Iterator[None]:
        """A failed channel-join CLI call becomes a NodeError naming the node and its log."""
        try:
            yield
        except FabricBinaryError as exc:
            raise NodeError(f"{node_id}: joining channel '{self.config.channel}' failed: {exc}; "
                            f"log: {self.layout.log_file(node_id)}") from exc

    def _rollback(self, state: dict, started: list[str], exc: BaseException) -> None:
        """Stop the nodes this call started; note it in ``exc``'s message."""
        if not started:
            return
        stopped = self._stop_nodes(state, started)
        note = (f"rolled back: stopped {', '.join(stopped)} (started by this call; nodes that were "
                "already running are left alone)")
        self.report(note)
        if isinstance(exc, (NodeError, FabricBinaryError)) and len(exc.args) == 1:
            exc.args = (f"{exc.args[0]}\n{note}",)

    def generate(self) -> None:
        """Every local org's home and definition, and (on the orderer org's site) the genesis block; no
        process is started."""
        self.fabric.check()
        with self._locked():
            self._generate()

    def _generate(self) -> None:
        material.ensure_fabric_config(self.fabric, self.layout)
        self._init_orgs()
        if self.hosts_orderer and material.ensure_genesis_block(self.fabric, self.config, self.layout):
            self.report(f"genesis block for channel '{self.config.channel}' written (configtxgen, from "
                        f"{len(self.config.orgs) + 1} org definitions)")

    def init_orgs(self) -> None:
        """The org-side step for every org of this site: its home, its definition in ``public/``; no
        channel, no process."""
        self.fabric.check()
        with self._locked():
            self._init_orgs()

    def _init_orgs(self) -> None:
        private_dir(self.layout.root)   # the site's own machine: its org homes live here
        if self.hosts_orderer and not self.layout.own_definition(self.config.orderer_org.name).exists():
            orginit.init_orderer_org(self.fabric, self.layout)
            self.report(f"{self.config.orderer_org.name}: home and definition written")
        for org in self.local_orgs:
            if not self.layout.own_definition(org.name).exists():
                orginit.init_peer_org(self.fabric, self.layout, org)
                self.report(f"{org.name}: home and definition written")

    def init_new_org(self, org: PeerOrg) -> "definition.Definition":
        """Initialize an org that is not in the consortium file (one that asks to join), make it part of
        this site, and return its definition."""
        if org.name in {o.name for o in self.config.orgs}:
            raise ConfigError(f"{org.name} is already an org of this consortium")
        joined = self.config.with_orgs(self.config.orgs + (org,))   # its names and ports must not collide
        material.ensure_fabric_config(self.fabric, self.layout)
        made = orginit.init_peer_org(self.fabric, Layout(self.layout.root, joined), org)
        with self._locked() as state:
            self.refresh()
            self.site = state["site"] = {**self.site, "orgs": [*self.site["orgs"], org.name]}
        self.report(f"{org.name}: home and definition written")
        return made

    def _healthy_elsewhere(self, spec: NodeSpec) -> bool:
        """A node not started by us that answers healthy on its operations port (compose, systemd)."""
        if spec.tls_ca is None or not spec.tls_ca.exists():
            return False
        return nodes.healthz(spec, timeout=1.0)[0]

    def _preflight_ports(self, specs: list[NodeSpec]) -> None:
        """Refuse to start anything when a port of a node about to start is taken; say which listen in the
        kernel's ephemeral range (they start today, and may find their port taken on another day)."""
        eph = nodes.ephemeral_ports() or range(0)
        risky = sorted({p for spec in specs for p in spec.ports.values() if p in eph})
        if risky:
            self.report(f"note: {len(risky)} listen port(s) ({', '.join(map(str, risky[:5]))}"
                        f"{', ...' if len(risky) > 5 else ''}) lie in the kernel's ephemeral range"
                        f"{_ephemeral_hint(risky[0], eph)}")
        for spec in specs:
            for kind, port in spec.ports.items():
                if nodes.port_in_use(spec.host, port):
                    raise NodeError(self._port_taken(spec, kind, port))

    def _port_taken(self, spec: NodeSpec, kind: str, port: int) -> str:
        holder = nodes.port_holder(port)
        by = f"by pid {holder[0]} ({holder[1]})" if holder else "by another process"
        source = self.config.source or paths.DEFAULT_CONFIG
        return (f"{spec.node_id}: {kind} port {spec.host}:{port} ({nodes.port_role(spec.kind, kind)}) "
                f"is already in use {by}; free it or change it in {source}. {spec.node_id} was not "
                f"started (its log would be {self.layout.log_file(spec.node_id)})"
                f"{_ephemeral_hint(port, nodes.ephemeral_ports())}")

    def _start_all(self, state: dict, specs: list[NodeSpec], started: list[str]) -> None:
        """Start ``specs`` (each one appended to ``started`` at once), then wait until all are healthy;
        NodeError names the first that is not. The caller stops ``started`` on failure."""
        procs = []
        for spec in specs:
            proc = nodes.start(spec, self.layout, self.launcher)
            state["nodes"][spec.node_id] = {"pid": proc.pid, "kind": spec.kind,
                                            "log": str(self.layout.log_file(spec.node_id))}
            started.append(spec.node_id)
            procs.append((spec, proc))
            self.report(f"started {spec.node_id} (pid {proc.pid})")
        for spec, proc in procs:
            nodes.wait_healthy(spec, proc, self.layout)
            self.report(f"{spec.node_id} healthy")

    def _stop_nodes(self, state: dict, node_ids: list[str]) -> list[str]:
        """Stop these nodes of the run dir (chaincode servers, then peers, orderers, CAs; each tier
        together), forget them in ``state``; the ids actually stopped."""
        stopped = []
        infos = {n: state.get("nodes", {}).get(n, {}) for n in node_ids}
        tiers: dict[int, list[tuple[str, int]]] = {}
        for node_id, info in sorted(infos.items(), key=_stop_order):
            pid = info.get("pid")
            if pid and nodes.is_our_process(pid, node_id, self.layout.root):
                tiers.setdefault(_stop_order((node_id, info))[0], []).append((node_id, int(pid)))
        for tier in sorted(tiers):
            nodes.stop_pids([pid for _, pid in tiers[tier]])
            for node_id, pid in tiers[tier]:
                stopped.append(node_id)
                self.report(f"stopped {node_id} (pid {pid})")
        for node_id in node_ids:
            state.get("nodes", {}).pop(node_id, None)
        return stopped

    def _wait_same_height(self, min_height: int = 1, timeout: float = 30.0) -> int:
        """Wait until every orderer (an active Raft consenter) and every peer is at one channel
        height of at least ``min_height``; that height."""
        deadline = time.monotonic() + timeout
        while True:
            view = self.channel_view()
            problem = convergence_problem(view, min_height)
            if problem is None:
                return next(iter(view.values())).height or 0
            if time.monotonic() >= deadline:
                logs = ", ".join(f"{n}: {self.layout.log_file(n)}" for n in view)
                raise NodeError(f"nodes did not converge on one channel height within {timeout:.0f}s: "
                                f"{problem}; logs: {logs}")
            time.sleep(0.5)

    def channel_view(self) -> dict[str, ChannelState]:
        """Every local orderer's (osnadmin channel list) and peer's (peer channel getinfo) view of the
        channel."""
        out: dict[str, ChannelState] = {}
        for o in self.config.orderer_org.orderers if self.hosts_orderer else ():
            try:
                info = channel.orderer_channel_info(self.fabric, self.config, self.layout, o)
            except Exception:   # node down: reported as unknown height
                info = None
            out[o.name] = (ChannelState(int(info["height"]), info.get("status"), info.get("consensusRelation"))
                           if info else ChannelState(None, "unknown", "unknown"))
        for org in self.local_orgs:
            out[org.peer_node_id] = ChannelState(channel.peer_height(self.fabric, self.config, self.layout, org))
        return out

    def heights(self) -> dict[str, int | None]:
        """Block height of the channel on every orderer and peer."""
        return {n: st.height for n, st in self.channel_view().items()}

    # -- channel configuration -----------------------------------------------------------------
    def apply_batch(self, batch: Batch | None = None) -> int:
        """Make the running channel cut blocks with ``batch`` (default: the config's) through a config
        transaction; returns the channel height every node agrees on afterwards."""
        batch = batch or self.config.batch
        with self._locked() as state:
            self._require_up(state, "change the channel's batch settings")
            before = max((h for h in self.heights().values() if h is not None), default=1)
            if not channel.apply_batch(self.fabric, self.config, self.layout, batch):
                self.report("channel already uses these batch settings: nothing to do")
                return self._wait_same_height(min_height=before)
            self.report(f"channel '{self.config.channel}' batch settings updated: timeout {batch.timeout_ms} ms, "
                        f"max {batch.max_message_count} messages")
            return self._wait_same_height(min_height=before + 1)

    def _require_up(self, state: dict, what: str) -> None:
        """Refuse ``what`` unless every orderer and peer of this site runs: started by us, or healthy on its
        operations port when something else runs it (docker compose, systemd)."""
        down = [s.node_id for s in self.orderer_specs() + self.peer_specs()
                if self.running_pid(state, s.node_id) is None and not self._healthy_elsewhere(s)]
        if down:
            raise NodeError(f"cannot {what}: network not up ({', '.join(down)} down); run network/network.sh up")

    # -- deploy ----------------------------------------------------------------------------
    def deploy(self, dep: "ccdeploy.ChaincodeDeployment") -> int:
        """Package, install, approve, commit (new sequence when anything changed) and start the
        chaincode servers. Returns the committed sequence."""
        t0 = time.monotonic()
        with self._locked() as state:
            self._require_up(state, f"deploy {dep.name!r}")
            previous = state.setdefault("chaincodes", {}).get(dep.name)
            package_ids: dict[str, str] = {}
            for org in self.local_orgs:
                pkg, _ = ccdeploy.prepare_package(self.config, self.layout, dep, org)
                pkg_id = lifecycle.package_id(self.fabric, self.config, self.layout, org, pkg)
                if pkg_id not in lifecycle.installed_ids(self.fabric, self.config, self.layout, org):
                    lifecycle.install(self.fabric, self.config, self.layout, org, pkg)
                    self.report(f"installed {pkg_id[:40]}… on {org.peer.name}.{org.name}")
                package_ids[org.name] = pkg_id
            sequence, fingerprint, changed = ccdeploy.run_lifecycle(
                self.fabric, self.config, self.layout, dep, package_ids,
                previous["fingerprint"] if previous else None, report=self.report, local=self.local_orgs)
            if changed:
                self.report(f"chaincode {dep.name!r} v{dep.version} committed at sequence {sequence} "
                            f"(policy {dep.endorsement_policy(self.config)})")
            old = {s.node_id: s for s in self.chaincode_specs(state)}
            state["chaincodes"][dep.name] = {"deployment": dep.to_json(), "package_ids": package_ids,
                                             "sequence": sequence, "fingerprint": fingerprint}
            new_specs = [ccdeploy.server_spec(self.config, self.layout, dep, org, package_ids[org.name])
                         for org in self.local_orgs]
            running = {s.node_id for s in new_specs if self.running_pid(state, s.node_id) is not None}
            outdated = [s.node_id for s in new_specs
                        if s.node_id in running and (changed or old.get(s.node_id) != s)]
            self._stop_nodes(state, outdated)   # for the redeploy
            to_start = [s for s in new_specs if s.node_id not in running or s.node_id in outdated]
            self._preflight_ports(to_start)
            started: list[str] = []
            try:
                self._start_all(state, to_start, started)
            except BaseException as exc:
                self._rollback(state, started, exc)
                raise
        self.report(f"chaincode {dep.name!r} ready in {time.monotonic() - t0:.1f}s")
        return sequence

    # -- down --------------------------------------------------------------------------------
    def down(self, keep_state: bool = False) -> list[str]:
        """Stop exactly the processes this run dir started; remove generated state."""
        stopped = []
        if not self.layout.root.exists():
            return stopped
        with self._locked() as state:
            stopped = self._stop_nodes(state, list(state.get("nodes", {})))
            state["nodes"] = {}
            self._stop_strays()
        if not keep_state:
            shutil.rmtree(self.layout.root, ignore_errors=True)
            self.report(f"removed {self.layout.root}")
        return stopped

    def _stop_strays(self) -> None:
        """Safety net: any process still carrying this run dir's node tag (a child that left its
        node's process group, a node whose pid was lost) is stopped too."""
        strays = nodes.tagged_processes(self.layout.root)
        if strays:
            self.report("stopping stray processes of this run dir: "
                        + ", ".join(f"{pid} ({node})" for pid, node in sorted(strays.items())))
            nodes.stop_pids(sorted(strays), grace=5)

    # -- status ------------------------------------------------------------------------------
    def status(self) -> list[NodeStatus]:
        state = nodes.load_state(self.layout)
        heights = self.heights() if self.layout.genesis_block.exists() else {}
        out = []
        for spec in self.orderer_specs() + self.peer_specs() + self.ca_specs() + self.chaincode_specs(state):
            pid = self.running_pid(state, spec.node_id)
            if pid:
                ok, detail = nodes.healthz(spec)
                detail = "OK" if ok else detail[:60]
            elif spec.kind != "chaincode" and self._healthy_elsewhere(spec):
                ok, detail = True, "OK (run outside this tool)"
            else:
                ok, detail = False, "not running"
            out.append(NodeStatus(spec.node_id, spec.kind, ok, pid, spec.ports,
                                  heights.get(spec.node_id) if ok else None, detail, spec.metrics_url))
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


def _ephemeral_hint(port: int, eph: range | None) -> str:
    """Why a port may be taken by no listener at all: it lies in ``eph``, the kernel's ephemeral range,
    where outgoing connections pick theirs."""
    if eph is None or port not in eph:
        return ""
    return (f". Ports {eph.start}-{eph.stop - 1} are the kernel's ephemeral range (net.ipv4.ip_local_port_range),"
            f" which outgoing connections take at random: give listeners ports below {eph.start}")
