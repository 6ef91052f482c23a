"""The synthetic "paper-doll" dataset: people wearing ModaNet garments, with full ground truth."""
