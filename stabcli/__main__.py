"""`python -m stabcli` runs the command line."""

from stabcli.cli import main

if __name__ == "__main__":
    main()
