"""Scenarios: YAML model, pure planner (seeded), pure scheduler, and a runner for fleets."""

from firmware_sim.scenario.model import Scenario, load_scenario, parse_scenario
from firmware_sim.scenario.plan import Action, plan
from firmware_sim.scenario.schedule import Scheduler

__all__ = ["Action", "Scenario", "Scheduler", "load_scenario", "parse_scenario", "plan"]
