"""Fabric node processes: their environment, start, health check and stop."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .config import ConsortiumConfig, Orderer, PeerOrg
from .fabricbin import FabricInstall
from .layout import Layout
from . import paths
from .private import CHILD_UMASK, private_dir


class NodeError(RuntimeError):
    """A node could not be started or is unhealthy; the message names the node and its log."""


@dataclass(frozen=True)
class NodeSpec:
    """Everything needed to run one node as a native process."""

    node_id: str                  # orderer1, peer0.org1, cc.org1, ca.org1
    kind: str                     # orderer | peer | chaincode | ca
    argv: list[str]
    env: dict[str, str]
    ports: dict[str, int]
    health_url: str | None = None
    metrics_url: str | None = None  # Prometheus scrape target (operations endpoint, TLS)
    tls_ca: Path | None = None
    cwd: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"       # the address its listeners bind to


def _tls_files(d: Path) -> tuple[str, str, str]:
    return str(d / "tls" / "server.crt"), str(d / "tls" / "server.key"), str(d / "tls" / "ca.crt")


def orderer_spec(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, o: Orderer) -> NodeSpec:
    d = layout.orderer_dir(o)
    cert, key, ca = _tls_files(d)
    data = layout.orderer_data(o)
    host = o.host
    env = {
        "FABRIC_CFG_PATH": str(layout.fabric_cfg),
        "FABRIC_LOGGING_SPEC": "INFO",
        "ORDERER_GENERAL_LISTENADDRESS": host,
        "ORDERER_GENERAL_LISTENPORT": str(o.port),
        "ORDERER_GENERAL_LOCALMSPID": config.orderer_org.msp_id,
        "ORDERER_GENERAL_LOCALMSPDIR": str(d / "msp"),
        "ORDERER_GENERAL_BOOTSTRAPMETHOD": "none",
        "ORDERER_GENERAL_TLS_ENABLED": "true",
        "ORDERER_GENERAL_TLS_CERTIFICATE": cert,
        "ORDERER_GENERAL_TLS_PRIVATEKEY": key,
        "ORDERER_GENERAL_TLS_ROOTCAS": f"[{ca}]",
        "ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE": cert,
        "ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY": key,
        "ORDERER_GENERAL_CLUSTER_ROOTCAS": f"[{ca}]",
        "ORDERER_CHANNELPARTICIPATION_ENABLED": "true",
        "ORDERER_FILELEDGER_LOCATION": str(data / "ledger"),
        "ORDERER_CONSENSUS_WALDIR": str(data / "etcdraft" / "wal"),
        "ORDERER_CONSENSUS_SNAPDIR": str(data / "etcdraft" / "snapshot"),
        "ORDERER_OPERATIONS_LISTENADDRESS": f"{host}:{o.operations_port}",
        "ORDERER_OPERATIONS_TLS_ENABLED": "true",
        "ORDERER_OPERATIONS_TLS_CERTIFICATE": cert,
        "ORDERER_OPERATIONS_TLS_PRIVATEKEY": key,
        "ORDERER_OPERATIONS_TLS_CLIENTAUTHREQUIRED": "false",
        "ORDERER_OPERATIONS_TLS_CLIENTROOTCAS": f"[{ca}]",
        "ORDERER_METRICS_PROVIDER": "prometheus",
        "ORDERER_ADMIN_LISTENADDRESS": f"{host}:{o.admin_port}",
        "ORDERER_ADMIN_TLS_ENABLED": "true",
        "ORDERER_ADMIN_TLS_CERTIFICATE": cert,
        "ORDERER_ADMIN_TLS_PRIVATEKEY": key,
        "ORDERER_ADMIN_TLS_ROOTCAS": f"[{ca}]",
        "ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED": "true",
        "ORDERER_ADMIN_TLS_CLIENTROOTCAS": f"[{layout.orderer_tls_ca}]",
    }
    return NodeSpec(node_id=o.name, kind="orderer", argv=[str(fabric.binary("orderer"))], env=env,
                    ports=o.ports, health_url=f"https://{host}:{o.operations_port}/healthz",
                    metrics_url=f"https://{host}:{o.operations_port}/metrics", tls_ca=Path(ca), cwd=data,
                    host=host)


def peer_spec(fabric: FabricInstall, config: ConsortiumConfig, layout: Layout, org: PeerOrg) -> NodeSpec:
    p = org.peer
    d = layout.peer_dir(org)
    cert, key, ca = _tls_files(d)
    node_id = org.peer_node_id
    data = layout.peer_data(org)
    host = org.host
    address = f"{host}:{p.port}"
    builder = paths.BUILDERS_DIR / "ccaas"
    env = {
        "FABRIC_CFG_PATH": str(layout.fabric_cfg),
        "FABRIC_LOGGING_SPEC": "INFO",
        "CORE_PEER_ID": p.host_name,
        "CORE_PEER_ADDRESS": address,
        "CORE_PEER_LISTENADDRESS": address,
        "CORE_PEER_CHAINCODEADDRESS": f"{host}:{p.chaincode_port}",
        "CORE_PEER_CHAINCODELISTENADDRESS": f"{host}:{p.chaincode_port}",
        "CORE_PEER_GOSSIP_BOOTSTRAP": address,
        "CORE_PEER_GOSSIP_EXTERNALENDPOINT": address,
        "CORE_PEER_GOSSIP_ENDPOINT": address,
        # peers meet before all have joined the channel; retry the handshake in 2 s, not the default 25 s
        "CORE_PEER_GOSSIP_RECONNECTINTERVAL": "2s",
        "CORE_PEER_LOCALMSPID": org.msp_id,
        "CORE_PEER_MSPCONFIGPATH": str(d / "msp"),
        "CORE_PEER_TLS_ENABLED": "true",
        "CORE_PEER_TLS_CERT_FILE": cert,
        "CORE_PEER_TLS_KEY_FILE": key,
        "CORE_PEER_TLS_ROOTCERT_FILE": ca,
        "CORE_PEER_FILESYSTEMPATH": str(data / "ledger"),
        "CORE_LEDGER_SNAPSHOTS_ROOTDIR": str(data / "snapshots"),
        "CORE_OPERATIONS_LISTENADDRESS": f"{host}:{p.operations_port}",
        "CORE_OPERATIONS_TLS_ENABLED": "true",
        "CORE_OPERATIONS_TLS_CERT_FILE": cert,
        "CORE_OPERATIONS_TLS_KEY_FILE": key,
        "CORE_OPERATIONS_TLS_CLIENTAUTHREQUIRED": "false",
        # /healthz is open; /metrics and /logspec want a TLS client certificate of the org's TLS CA
        # (the peer reads this list with viper's GetStringSlice: space-separated, no brackets)
        "CORE_OPERATIONS_TLS_CLIENTROOTCAS_FILES": ca,
        "CORE_METRICS_PROVIDER": "prometheus",
        "CORE_VM_ENDPOINT": "",
        "CORE_CHAINCODE_EXTERNALBUILDERS":
            f"[{{name: ccaas_builder, path: {builder}, "
            f"propagateEnvironment: [CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG]}}]",
        "CORE_PEER_GATEWAY_ENABLED": "true",
        # private data is never pushed during endorsement (collections have maxPeerCount 0): peers pull it
        # while committing; if an endorser is unreachable, commit after 5 s and reconcile every 5 s
        "CORE_PEER_GOSSIP_PVTDATA_PULLRETRYTHRESHOLD": "5s",
        "CORE_PEER_GOSSIP_PVTDATA_RECONCILESLEEPINTERVAL": "5s",
        # a peer cut off from the orderers (its host's link down) retries at least every 2 s, not after an
        # hour-long backoff: it catches up within seconds of the link coming back
        "CORE_PEER_DELIVERYCLIENT_RECONNECTBACKOFFTHRESHOLD": "2s",
    }
    return NodeSpec(node_id=node_id, kind="peer", argv=[str(fabric.binary("peer")), "node", "start"],
                    env=env, ports=p.ports, health_url=f"https://{host}:{p.operations_port}/healthz",
                    metrics_url=f"https://{host}:{p.operations_port}/metrics", tls_ca=Path(ca), cwd=data,
                    host=host)


# -- process helpers ---------------------------------------------------------------------------

def _proc_environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        k, sep, v = item.partition(b"=")
        if sep:
            out[k.decode(errors="replace")] = v.decode(errors="replace")
    return out


def is_our_process(pid: int, node_id: str, run_root: Path) -> bool:
    """True when ``pid`` is alive (not a zombie) and is the node we started in this run dir."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    env = _proc_environ(pid)
    return env.get("FEDFABRIC_NODE") == node_id and env.get("FEDFABRIC_RUN_DIR") == str(run_root)


def port_in_use(host: str, port: int) -> bool:
    """Something here listens on ``host:port``. An address that is not this network namespace's (a node
    started inside another namespace) cannot be checked from here: False."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.errno != errno.EADDRNOTAVAIL
    return False


_PORT_ROLES = {
    ("orderer", "listen"): "the orderer's gRPC listener: broadcast, deliver, Raft cluster",
    ("orderer", "admin"): "the orderer's admin endpoint: osnadmin channel participation",
    ("peer", "listen"): "the peer's gRPC listener: endorser, gossip, gateway",
    ("peer", "chaincode"): "the peer's chaincode listener",
    ("ca", "listen"): "the Fabric CA's API",
    ("chaincode", "chaincode-server"): "the chaincode server (chaincode as a service)",
}


def ephemeral_ports() -> range | None:
    """The kernel's ephemeral port range (``net.ipv4.ip_local_port_range``), from which every outgoing
    connection takes its local port: a listener placed there can find its port taken at any moment."""
    try:
        lo, hi = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return None
    return range(lo, hi + 1)


def port_role(kind: str, port_kind: str) -> str:
    """What a node's port is for, in words (``operations`` ports serve /healthz and /metrics)."""
    if port_kind == "operations":
        return "the operations endpoint: /healthz, Prometheus /metrics"
    return _PORT_ROLES.get((kind, port_kind), f"the {kind}'s {port_kind} port")


def port_holder(port: int) -> tuple[int, str] | None:
    """(pid, command name) of a process with a TCP socket bound to ``port``, when this user can see it
    (/proc/net/tcp{,6} socket inode, found among the processes' open files)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # bound to the port and not connected anywhere (listening, or bound only)
            if (len(fields) > 9 and int(fields[1].rsplit(":", 1)[1], 16) == port
                    and fields[2].endswith(":0000") and fields[9] != "0"):
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            for fd in (d / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(d.name), (d / "comm").read_text().strip()
        except OSError:
            continue
    return None


def accepting(port: int, host: str = "127.0.0.1") -> bool:
    """A TCP connect to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 15) -> str:
    try:
        data = path.read_bytes()[-20000:].decode(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(data[-lines:])


def start(spec: NodeSpec, layout: Layout, launcher: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """Start a node detached from this process, logging to run/logs/<node>.log; what it writes is
    owner-only (umask 077: its keys, packages and builder output). ``launcher`` prefixes the command
    and must exec it in place (``ip netns exec NS``: the node runs in that network namespace, with the
    same pid)."""
    log = layout.log_file(spec.node_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    if spec.cwd:
        private_dir(spec.cwd)
    env = {**os.environ, **spec.env, "FEDFABRIC_NODE": spec.node_id,
           "FEDFABRIC_RUN_DIR": str(layout.root)}
    with open(log, "ab") as fh:
        fh.write(f"\n==== fedfabric: starting {spec.node_id} at {time.strftime('%Y-%m-%dT%H:%M:%S')} ====\n"
                 .encode())
        fh.flush()
        return subprocess.Popen([*launcher, *spec.argv], env=env, cwd=spec.cwd, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, umask=CHILD_UMASK)


def healthz(spec: NodeSpec, timeout: float = 2.0) -> tuple[bool, str]:
    """Query the node's operations endpoint (chaincode servers: a TLS handshake); (healthy, detail)."""
    if spec.kind == "chaincode":
        return tls_probe(spec, timeout=timeout)
    if not spec.health_url:
        return True, "no health endpoint"
    ctx = ssl.create_default_context(cafile=str(spec.tls_ca)) if spec.tls_ca else None
    try:
        with urllib.request.urlopen(spec.health_url, timeout=timeout, context=ctx) as resp:
            body = resp.read().decode(errors="replace")
            return resp.status == 200, body.strip()
    except urllib.error.HTTPError as exc:   # 503 carries the failed checks
        return False, exc.read().decode(errors="replace").strip()
    except (OSError, ValueError) as exc:
        return False, str(exc)


def tls_probe(spec: NodeSpec, timeout: float = 2.0) -> tuple[bool, str]:
    """Health of a chaincode server: a completed mutual-TLS handshake on its port."""
    host, port = spec.host, next(iter(spec.ports.values()))
    ctx = ssl.create_default_context(cafile=str(spec.tls_ca))
    ctx.load_cert_chain(spec.extra["client_cert"], spec.extra["client_key"])
    ctx.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=host):
                return True, "OK"
    except (OSError, ssl.SSLError) as exc:
        return False, str(exc)



def wait_healthy(spec: NodeSpec, proc: subprocess.Popen[bytes] | None, layout: Layout,
                 timeout: float = 60.0) -> None:
    """Block until /healthz says OK; raise NodeError naming the node and its log if it dies."""
    deadline = time.monotonic() + timeout
    detail = ""
    log = layout.log_file(spec.node_id)
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise NodeError(f"{spec.node_id} exited with code {proc.returncode} during start-up; "
                            f"log: {log}\n--- last lines ---\n{tail(log)}")
        ok, detail = healthz(spec)
        if ok:
            # /healthz can answer before the node's gRPC listener accepts connections
            closed = [k for k, port in spec.ports.items()
                      if k in ("listen", "admin") and not accepting(port, spec.host)]
            if not closed:
                return
            detail = f"{', '.join(closed)} port not accepting connections yet"
        time.sleep(0.2)
    raise NodeError(f"{spec.node_id} not healthy after {timeout:.0f}s ({detail}); log: {log}\n"
                    f"--- last lines ---\n{tail(log)}")


# A supervisor (supervise.py) gives its chaincode child CHILD_GRACE seconds after SIGTERM before it
# kills it; a node's whole process group gets longer before SIGKILL, so a supervisor normally stops
# its own child, and the group SIGKILL catches whatever is left either way.
STOP_GRACE = 15.0
KILL_WAIT = 5.0       # after SIGKILL: how long to wait for the processes to disappear


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, ...]; None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None


def _alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def _groups() -> dict[int, list[int]]:
    """Live (non-zombie) processes by process group, from one pass over /proc."""
    out: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            fields = _stat_fields(int(d.name))
            if fields and fields[0] != "Z":
                out.setdefault(int(fields[2]), []).append(int(d.name))
    return out


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    return _groups().get(pgid, [])


def _own_group(pid: int) -> bool:
    """True when ``pid`` leads its own process group (nodes are started with a new session), or did:
    its group outlives it while members remain (a kernel never reuses a pid that is a live pgid)."""
    if pid == os.getpgrp():
        return False
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return bool(group_members(pid))


def _send(pid: int, group: bool, sig: int) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child (no zombie left behind)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _running(targets: dict[int, bool]) -> list[int]:
    """Processes still alive among ``targets`` (pid -> whole group?)."""
    for pid in targets:
        _reap(pid)
    groups = _groups() if any(targets.values()) else {}
    left = []
    for pid, group in targets.items():
        left += groups.get(pid, []) if group else ([pid] if _alive(pid) else [])
    return left


def _wait_gone(targets: dict[int, bool], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := _running(targets)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in targets:   # one that died after its last reap is a zombie now: collect it
        _reap(pid)
    return left


def stop_pids(pids: list[int], grace: float = STOP_GRACE) -> None:
    """Stop nodes together: SIGTERM to each one's process group, SIGKILL to the groups still alive
    after ``grace`` seconds; return once every process of those groups is gone."""
    targets = {pid: _own_group(pid) for pid in pids}
    for pid, group in targets.items():
        _send(pid, group, signal.SIGTERM)
    if not _wait_gone(targets, grace):
        return
    for pid, group in targets.items():
        _send(pid, group, signal.SIGKILL)
    left = _wait_gone(targets, KILL_WAIT)
    if left:
        raise NodeError(f"process(es) {', '.join(map(str, left))} still alive {KILL_WAIT:.0f}s after SIGKILL")


def stop_pid(pid: int, grace: float = STOP_GRACE) -> None:
    """Stop one node and every process of its group (see :func:`stop_pids`)."""
    stop_pids([pid], grace)


def tagged_processes(run_root: Path) -> dict[int, str]:
    """Live processes that a node of ``run_root`` started or is (they inherit FEDFABRIC_NODE and
    FEDFABRIC_RUN_DIR): pid -> node id. This process itself is never listed."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        env = _proc_environ(int(d.name))
        if env.get("FEDFABRIC_RUN_DIR") == str(run_root) and "FEDFABRIC_NODE" in env and _alive(int(d.name)):
            out[int(d.name)] = env["FEDFABRIC_NODE"]
    return out


def load_state(layout: Layout) -> dict:
    try:
        return json.loads(layout.state_file.read_text())
    except (OSError, ValueError):
        return {"nodes": {}}


def save_state(layout: Layout, state: dict) -> None:
    layout.state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = layout.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(layout.state_file)
