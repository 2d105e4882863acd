"""The chaincode owns the integer codec and depends on nothing in the app; the deploy digest follows."""
import ast
import subprocess
import sys
from pathlib import Path

from fedfabric.network import deploy, paths

ROOT = Path(__file__).resolve().parents[2]
CHAINCODE = ROOT / "chaincode"


def _imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, at any depth (lazy imports inside functions included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


def test_no_chaincode_source_imports_the_app():
    files = sorted(CHAINCODE.rglob("*.py"))
    assert len(files) > 10
    bad = {str(f.relative_to(ROOT)): sorted(m for m in _imported_modules(f) if m.split(".")[0] == "fedfabric")
           for f in files}
    assert {f: m for f, m in bad.items() if m} == {}


def test_chaincode_server_modules_load_without_the_app():
    code = ("import importlib, pkgutil, sys\n"
            f"sys.path.insert(0, {str(CHAINCODE)!r})\n"
            "import fedfabric_cc, fabshim, fedfabric_protocol, fedfabric_protocol.rules\n"
            "for pkg in (fedfabric_cc, fabshim, fedfabric_protocol, fedfabric_protocol.rules):\n"
            "    for m in pkgutil.iter_modules(pkg.__path__):\n"
            "        importlib.import_module(pkg.__name__ + '.' + m.name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'fedfabric'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=CHAINCODE, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _tree(root: Path) -> dict[str, Path]:
    files = {"cc": root / "chaincode" / "fedfabric_cc" / "contract.py",
             "shim": root / "chaincode" / "fabshim" / "stub.py",
             "protocol": root / "chaincode" / "fedfabric_protocol" / "rules" / "median.py",
             "app": root / "app" / "fedfabric" / "fl" / "fixedpoint.py",
             "test": root / "chaincode" / "notes" / "scratch.py"}
    for f in files.values():
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("x = 1\n")
    return files


def test_source_digest_covers_exactly_what_the_chaincode_server_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path)
    files = _tree(tmp_path)
    first = deploy.source_digest()
    assert deploy.source_digest() == first
    for name in ("app", "test"):
        files[name].write_text("x = 2\n")
        assert deploy.source_digest() == first, f"{name} is not part of the chaincode server"
    for name in ("cc", "shim", "protocol"):
        files[name].write_text(files[name].read_text() + "y = 3\n")
        now = deploy.source_digest()
        assert now != first, f"a change in {name} must restart the servers"
        first = now
