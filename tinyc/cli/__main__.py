"""`python -m tinyc.cli`."""

from tinyc.cli import main

main()
