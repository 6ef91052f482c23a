"""Training: the SGD loop with the seed's settings, DDP, logging."""
