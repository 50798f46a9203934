"""Review of a report: the lifecycle rules, and the program-level metrics across reports."""
