"""Examples that plug into fedfabric from the outside (e.g. a Flower client as an org's trainer)."""
