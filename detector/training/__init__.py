"""Training: clips from manifests (`data`), paired batches (`sampler`), augmentation (`augment`),
CE and RACL (`losses`), the loop with checkpoint choice and resume (`loop`), DDP helpers (`distributed`)."""
