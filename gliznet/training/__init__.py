"""Training GliZNet with the transformers Trainer: the run config, batches, the trainer and WiSE interpolation.
Depends on modeling/ only."""
