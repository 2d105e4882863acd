"""Subprocess entry point of one fuzzing run: ``python -m tests.fuzz.target HARNESS [libFuzzer args]``.

The harness and the packages it exercises (the shim's, or the protocol's and the contract's) are
imported under atheris's instrumentation (so coverage guides the fuzzer through them), then the
harness's ``one_input`` is handed to libFuzzer, which exits the process. A harness is a module (``one_input``, ``seeds``) or ``module:name``, an object of the
module's ``HARNESSES`` with those two methods.
"""
from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

HARNESSES = {"handler": "tests.fuzz.harness_handler", "router": "tests.fuzz.harness_router",
             "contract": "tests.fuzz.harness_contract",
             **{n: f"tests.fuzz.harness_validators:{n}" for n in ("spec", "update_meta", "ballot", "rule")}}
SHIM_MODULES = ("fabshim.handler", "fabshim.stub", "fabshim.echo", "fabshim.limits", "fabshim.errors",
                "fabshim.compositekey", "fabshim.contract", "fabshim.memstub", "fabshim.identity")
INSTRUMENTED = {"handler": ("fabshim",), "router": ("fabshim",),
                "contract": ("fabshim", "fedfabric_cc", "fedfabric_protocol")}   # default: the protocol


def load(name: str) -> Any:
    """The harness called ``name`` (what has ``one_input`` and ``seeds``)."""
    module, _, attr = HARNESSES[name].partition(":")
    m = importlib.import_module(module)
    return m.HARNESSES[attr] if attr else m


def main(argv: list[str]) -> None:
    import atheris

    name = argv[1]
    logging.disable(logging.CRITICAL)  # the shim's warnings for every bad input would swamp the output
    with atheris.instrument_imports(include=list(INSTRUMENTED.get(name, ("fedfabric_protocol",)))):
        if "fabshim" in INSTRUMENTED.get(name, ()):
            for module in SHIM_MODULES:
                importlib.import_module(module)
        harness = load(name)   # and the modules it exercises, instrumented
    atheris.Setup([argv[0], *argv[2:]], harness.one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
