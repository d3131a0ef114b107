"""Risk officers' review queue: the risk service's cases, worked in the PWA."""
