"""Scoring any zero-shot scorer on real labelled text: data and portions, metrics, runs and reports, baselines, fusion.
Depends on modeling/ only."""
