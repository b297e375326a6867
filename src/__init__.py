"""Synthetic data → XGBoost model → BentoML service → AWS Lambda.

Each stage is a module with a command-line entry point (``python -m src.<stage> --help``)
and functions that tests call directly. Shared settings live in :mod:`src.config`.
"""
