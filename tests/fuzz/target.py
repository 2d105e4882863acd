"""Subprocess entry point of one fuzzing run: ``python -m tests.fuzz.target HARNESS [libFuzzer args]``.

The shim's modules are imported under atheris's instrumentation (so coverage guides the fuzzer
through them), then the harness's ``one_input`` is handed to libFuzzer, which exits the process.
"""
from __future__ import annotations

import importlib
import logging
import sys

import atheris

HARNESSES = {"handler": "tests.fuzz.harness_handler", "router": "tests.fuzz.harness_router"}
SHIM_MODULES = ("fabshim.handler", "fabshim.stub", "fabshim.echo", "fabshim.limits", "fabshim.errors",
                "fabshim.compositekey", "fabshim.contract", "fabshim.memstub", "fabshim.identity")


def main(argv: list[str]) -> None:
    name = argv[1]
    logging.disable(logging.CRITICAL)  # the shim's warnings for every bad input would swamp the output
    with atheris.instrument_imports(include=["fabshim"]):
        for module in SHIM_MODULES:
            importlib.import_module(module)
    harness = importlib.import_module(HARNESSES[name])
    atheris.Setup([argv[0], *argv[2:]], harness.one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
