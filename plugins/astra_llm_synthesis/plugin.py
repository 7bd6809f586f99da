"""Hook implementations (in progress)."""
