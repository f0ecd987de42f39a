"""``python -m neurosim`` is the ``neurosim`` command."""

from neurosim.cli import main

main()
