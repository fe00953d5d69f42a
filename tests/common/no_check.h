/* Forced into the test programs (CHECK_CFLAGS) when configure did not find Check. */
#error "Check (libcheck >= 0.9.10) was not found by configure: the test suites need it. Install it (Debian: apt install check) and re-run configure."
