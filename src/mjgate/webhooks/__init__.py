"""Client callbacks: the outbox rows written with each visible task change, and their delivery."""
