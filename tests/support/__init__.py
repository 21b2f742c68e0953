"""Test support that is not a test: what the tests need to read and run the built artefacts."""
