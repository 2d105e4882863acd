"""fabshim: a generic Python chaincode shim for Hyperledger Fabric (CCaaS)."""
