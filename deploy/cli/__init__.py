"""The `eddyline` command line: the app and the stack commands (app), the job commands (jobs),
monitoring (monitor, top), the demo (demo), and what they share (common)."""
