"""`python -m fasttag`: the same command line as `fasttag`."""

from fasttag.cli import main

if __name__ == "__main__":
    main()
