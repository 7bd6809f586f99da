"""SFT data in and out: import of the authors' released SFT format (ASTRA-SFT-1k), export to
ShareGPT, and the structural checks every training trajectory must pass."""

from astra_sft_data.trajectory_checks import Problem, check_trajectory, validate_trajectory

__all__ = ["Problem", "check_trajectory", "validate_trajectory"]
