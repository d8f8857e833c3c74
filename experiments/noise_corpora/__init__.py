"""A family of mel corpora with known noise (README.md)."""
