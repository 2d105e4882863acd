"""Coverage-guided fuzzing (atheris) of the chaincode shim and of the contract's input handling.

Harnesses: ``handler`` (one Connect stream's handler fed arbitrary ChaincodeMessages, with a fake
peer whose answers come from the same input), ``router`` (``fabshim.contract.Chaincode.invoke``
with arbitrary arguments on a MemoryStub), ``spec``, ``update_meta``, ``ballot`` and ``rule`` (the
protocol's validators fed hostile variants of valid records) and ``contract`` (every transaction
of the consortium contract on a MemoryStub world with jobs in every phase). ``test_fuzz.py`` runs
each briefly with a fixed seed inside the test suite; ``python -m tests.fuzz --seconds N`` runs them
longer and prints the executions and findings of each.
"""
