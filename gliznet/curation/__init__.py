"""From raw answers to a published dataset: validation counts, dedup, the zero-shot split, the HF datasets, card and publish.
Sits above generation/ (it runs the loop, then builds the folder)."""
