"""``python -m samforge``: the same as the ``samforge`` command."""

from .cli import main

if __name__ == "__main__":
    main()
