"""Graph passes: pure functions Graph -> Graph (or Graph -> facts)."""
