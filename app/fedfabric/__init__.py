"""fedfabric: federated learning for a consortium, coordinated and audited by Hyperledger Fabric."""

__version__ = "0.1.0"
