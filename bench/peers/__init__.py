"""The services and the Lambda handler bench/run.py measures ours against, in the same run."""
