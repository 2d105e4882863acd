import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "chaincode") not in sys.path:
    sys.path.insert(0, str(ROOT / "chaincode"))
