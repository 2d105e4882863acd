"""fedfabric's round protocol: the vocabulary the chaincode and every org's node share.

Pure code (no I/O, no clock, nothing float in what is endorsed), imported by both sides:

- ``states``     privacy modes, payload exchange, round states and phases, roles, statuses
- ``spec``       the typed, bounded job spec and its validator (``JobSpec.from_dict``)
- ``records``    typed records of a round: update meta, ballot, result, round record
- ``deadlines``  when each transaction is allowed and where a round stands (``phase``)
- ``tally``      the electorate, the stake-weighted tally and the leader draw
- ``codec``      the fixed-point integer codec; ``masks`` the pairwise masks
- ``rules``      the aggregation-rule registry (one module per rule)
- ``aggregate``  a round's aggregate from its updates, secure or clear
- ``errors``     ``ProtocolError`` (status + bounded message)
"""
