"""What the command line returns (a whole-session run returns the same codes)."""
EXIT_OK = 0  # everything asked for finished
EXIT_FAILED = 1  # some trial (or session) failed or was judged unusable; the others' outputs are kept
EXIT_BAD_INPUT = 2  # bad input: the message says which file, what is wrong and what to do
