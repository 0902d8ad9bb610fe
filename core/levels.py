"""The verdict levels of a trial (pipeline/verdict.py judges; the report shows them)."""
OK, DOUBTFUL, UNUSABLE = "ok", "doubtful", "unusable"
INCOMPLETE = "incomplete"  # the run stopped before the stages that decide the verdict
