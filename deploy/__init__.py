"""Stage 5 as commands: deploy to AWS Lambda, check what was pushed, roll back, tear down.

`python -m deploy --help` (or `make deploy`, `make destroy`). Each command runs its steps in
order, stops at the first failure, names the step and says what to do next.
"""
