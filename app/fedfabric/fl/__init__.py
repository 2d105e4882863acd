"""Federated-learning engine: models, data, training, fixed-point codec, secure masks, DP, rules."""
