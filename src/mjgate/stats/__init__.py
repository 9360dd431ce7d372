"""Aggregations over tasks for the console's dashboards (SQL in stats.repository)."""
