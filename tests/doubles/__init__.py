"""Test doubles: local servers standing in for what cannot run here (served models and LLM judges, the Hugging Face
Hub, VLMEvalKit's dataset host). Dev-only: the tests and bench/ import them, the product never does
(tests/test_architecture.py checks that)."""
