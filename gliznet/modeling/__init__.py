"""The GliZNet model: config, tokenizer layout, encoder + scoring head, losses, label text and predict.
The bottom of the stack with llm/: imports nothing else of gliznet."""
