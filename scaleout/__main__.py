from scaleout.cli.app import main

main()
