"""The simulated city: deterministic synthetic partner events (contract v1) for demos, tests and benchmarks.

city.py = the city's data and calibration; world.py = the simulation; faults.py = malformed messages.
"""

from simulator.city import CityConfig
from simulator.world import SimMessage, generate, simulate, summary

__all__ = ["CityConfig", "SimMessage", "generate", "simulate", "summary"]
