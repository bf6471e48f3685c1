"""Running jobs: the answer store, the spending cap, where state lives, exit codes."""
