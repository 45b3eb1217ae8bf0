"""The probe: load engine, statistics, verdict rules, cache checks and bench."""
