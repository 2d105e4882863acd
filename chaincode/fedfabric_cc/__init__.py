"""fedfabric consortium chaincode: members, stake, jobs, rounds, updates, aggregation, versions, audit."""
