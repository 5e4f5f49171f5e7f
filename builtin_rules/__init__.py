"""Data only: the shipped YAML rules and profiles."""
