from safehome.cli import main

main()
