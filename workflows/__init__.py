"""Release and recovery workflows: one strategy per file, each reading like its runbook."""
