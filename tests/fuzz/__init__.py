"""Coverage-guided fuzzing (atheris) of the chaincode shim.

Harnesses: ``handler`` (one Connect stream's handler fed arbitrary ChaincodeMessages, with a fake
peer whose answers come from the same input) and ``router`` (``fabshim.contract.Chaincode.invoke``
with arbitrary arguments on a MemoryStub). ``test_fuzz.py`` runs each briefly with a fixed seed
inside the test suite; ``python -m tests.fuzz --seconds N`` runs them longer and prints the
executions and findings of each.
"""
