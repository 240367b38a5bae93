"""Stand-ins that speak real protocols, for tests, benchmarks and offline demos (an LLM cannot run here)."""
