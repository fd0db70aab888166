"""``python -m gradlab``: the same program as the ``gradlab`` command."""
from ._launch import main

main()
