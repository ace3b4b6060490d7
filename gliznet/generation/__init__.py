"""Asking an LLM for data: prompts, the plan of each call, the checkpointed generation loop, and label descriptions.
Depends on llm/, records and _io only."""
